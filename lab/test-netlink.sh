#!/bin/bash
# lab/test-netlink.sh - prove sriovd's Netlink code against the real 6.1 kernel in the lab VM:
#   igb (Intel 82576, 2 VFs): read VF info, set mac/vlan+qos/spoofchk/trust/max rate on VF 0, expect
#     EINVAL (min rate), EOPNOTSUPP (link state), EPROTONOSUPPORT (802.1ad), read back; uevents while
#     the VFs appear;
#   netdevsim (2 VFs): the same steps, where min rate, link state and 802.1ad are accepted.
# Each step also runs against SimulatedRTNetlink with the matching driver profile and must agree.
# Exits non-zero on any mismatch. Needs lab/setup.sh to have run. Env: LAB_DIR as for run-in-vm.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LAB_DIR=${LAB_DIR:-$HERE/cache}
PROBE=$LAB_DIR/bin/netlink-probe
"$HERE/probe/build.sh" "$PROBE" >/dev/null
exec "$HERE/run-in-vm.sh" "$(cat <<GUEST
set -u
PROBE=$PROBE
rc=0
step() { echo "== \$*"; }
wait_for() { for _ in \$(seq 50); do eval "\$1" && return 0; sleep 0.2; done; echo "timeout: \$1"; return 1; }

step "igb: PF 0000:02:00.0"
P=/sys/bus/pci/devices/0000:02:00.0
modprobe igb
wait_for "ls \$P/net >/dev/null 2>&1"
IF=\$(ls \$P/net)
ip link set "\$IF" up
wait_for "[ \\\$(cat /sys/class/net/\$IF/carrier 2>/dev/null) = 1 ]" || rc=1
echo "netdev \$IF, sriov_totalvfs \$(cat \$P/sriov_totalvfs), carrier \$(cat /sys/class/net/\$IF/carrier)"
step "uevents while enabling 2 VFs"
\$PROBE uevents \$P/sriov_numvfs 2 || rc=1
step "rtnetlink on \$IF (igb)"
\$PROBE check "\$IF" igb 2 || rc=1
step "iproute2's view, for comparison"
ip -d link show "\$IF" | grep -E '^ +vf ' || true

step "netdevsim"
modprobe netdevsim
echo "10 1" > /sys/bus/netdevsim/new_device
N=/sys/bus/netdevsim/devices/netdevsim10
wait_for "ls \$N/net/* >/dev/null 2>&1"
NIF=\$(ls \$N/net | head -1)
echo 2 > \$N/sriov_numvfs
echo "netdev \$NIF, sriov_numvfs \$(cat \$N/sriov_numvfs)"
\$PROBE check "\$NIF" netdevsim 2 || rc=1
ip -d link show "\$NIF" | grep -E '^ +vf ' || true
echo "== result: \$([ \$rc = 0 ] && echo PASS || echo FAIL)"
exit \$rc
GUEST
)"
