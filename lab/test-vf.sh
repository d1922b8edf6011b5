#!/bin/bash
# lab/test-vf.sh - prove sriovd's VFController (SRIOVHardware) against the real 6.1 kernel in the lab VM:
#   igb PF 0000:02:00.0 (eth0, link up, 4 VFs on igbvf), VF 0: capture the state, apply mac/vlan/qos/spoofchk/
#     trust/max rate and compare with `ip -j -d link show eth0`; min rate, link state and 802.1ad refused with
#     EINVAL/EOPNOTSUPP/EPROTONOSUPPORT and rolled back; restore and compare with the capture; bind to vfio-pci
#     (/dev/vfio/N appears) and back to igbvf (its netdev reappears);
#   NVMe PF 0000:01:00.0 (4 VFs, autoprobe off): each VF bound to vfio-pci, then restored to unbound.
# Exits non-zero on any failure. Needs lab/setup.sh to have run. Env: LAB_DIR as for run-in-vm.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LAB_DIR=${LAB_DIR:-$HERE/cache}
PROBE=$LAB_DIR/bin/vf-probe
"$HERE/vfprobe/build.sh" "$PROBE" >/dev/null
exec "$HERE/run-in-vm.sh" "$(cat <<GUEST
set -u
PROBE=$PROBE
rc=0
step() { echo "== \$*"; }
wait_for() { for _ in \$(seq 50); do eval "\$1" && return 0; sleep 0.2; done; echo "timeout: \$1"; return 1; }

step "igb: PF 0000:02:00.0"
P=/sys/bus/pci/devices/0000:02:00.0
modprobe -a igb igbvf vfio-pci
wait_for "ls \$P/net >/dev/null 2>&1"
IF=\$(ls \$P/net)
ip link set "\$IF" up
wait_for "[ \\\$(cat /sys/class/net/\$IF/carrier 2>/dev/null) = 1 ]" || rc=1
echo 4 > \$P/sriov_numvfs
wait_for "ls \$P/virtfn0/net >/dev/null 2>&1" || rc=1
echo "netdev \$IF, sriov_numvfs \$(cat \$P/sriov_numvfs), VF 0 \$(basename \$(readlink \$P/virtfn0)) on \$(basename \$(readlink \$P/virtfn0/driver)) netdev \$(ls \$P/virtfn0/net)"
step "iproute2 before"
ip -d link show "\$IF" | grep -E '^ +vf ' || true
\$PROBE igb 0000:02:00.0 0 || rc=1
step "iproute2 after"
ip -d link show "\$IF" | grep -E '^ +vf ' || true
echo "VF 0 driver_override: \$(cat \$P/virtfn0/driver_override), netdev \$(ls \$P/virtfn0/net 2>/dev/null)"

step "NVMe: PF 0000:01:00.0"
N=/sys/bus/pci/devices/0000:01:00.0
modprobe nvme
wait_for "[ -e \$N/driver ]" || rc=1
echo 0 > \$N/sriov_drivers_autoprobe
echo 4 > \$N/sriov_numvfs
echo "sriov_numvfs \$(cat \$N/sriov_numvfs)"
\$PROBE vfio 0000:01:00.0 || rc=1
ls /dev/vfio
echo "== result: \$([ \$rc = 0 ] && echo PASS || echo FAIL)"
exit \$rc
GUEST
)"
