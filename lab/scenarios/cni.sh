#!/bin/bash
# lab/scenarios/cni.sh - runs INSIDE the lab VM (see lab/test-cni.sh): sriovd serves the real /sys on its Unix socket,
# and sriovd-cni is run as a runtime runs it (CNI_* in the environment, the configuration on stdin) with a real igbvf
# VF: ADD moves its netdev into a network namespace, CHECK agrees, sriovd restarts while the netdev is away, DEL puts
# it back. Every step is checked with `ip` in the namespace, on the host and on the PF's vf lines, and with sysfs.
# Env: LAB_SRIOVD and LAB_CNI (the binaries, built on the host), LAB_SCENARIOS (this folder).
# Prints a table of checks and `== result: PASS|FAIL`; exits non-zero on any failed check.
set -u
. "${LAB_SCENARIOS:-$(dirname "$0")}/lib.sh"
BIN=${LAB_SRIOVD:?LAB_SRIOVD names the sriovd binary}
CNI=${LAB_CNI:?LAB_CNI names the sriovd-cni binary}
IGB=0000:02:00.0
P=/sys/bus/pci/devices/$IGB
DB_DIR=/run/sriovd
SOCK=$DB_DIR/sriovd.sock
NS=labpod
NETNS=/run/netns/$NS
CONTAINER=lab-container-1

# The PF's vf line for VF n, normalised: the fields the CNI config sets.
ipvf() {
    ip -j -d link show "$IF" | jq -c --argjson n "${1:-0}" '.[0].vfinfo_list[] | select(.vf == $n)
        | {mac: .address, vlan: (.vlan_list[0].vlan // 0), qos: (.vlan_list[0].qos // 0), spoofchk, trust}'
}
# A link as `ip -j` shows it, in the namespace when NSNAME is given: FIELD of it (jq path), or empty.
linkf() { ip ${3:+-n "$3"} -j link show dev "$1" 2>/dev/null | jq -r ".[0].$2 // empty"; }
start_sriovd() {
    "$BIN" serve --sysfs /sys --db $DB_DIR/sriovd.db --listen 127.0.0.1:8080 --unix "$SOCK" --write-timeout 20 \
        >> /lab-io/sriovd.log 2>&1 &
    SRIOVD_PID=$!
}
# cni COMMAND CONFIG: runs the plugin; sets RC, OUT (stdout) and ERR (stderr).
cni() {
    local errfile
    errfile=$(mktemp)
    OUT=$(printf '%s' "$2" | env -i CNI_COMMAND="$1" CNI_CONTAINERID=$CONTAINER CNI_NETNS=$NETNS CNI_IFNAME=net1 \
        CNI_PATH=/usr/lib/cni CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=lab;K8S_POD_NAME=pod-1" PATH=/usr/bin:/bin \
        "$CNI" 2>"$errfile")
    RC=$?
    ERR=$(cat "$errfile"); rm -f "$errfile"
    echo "   > sriovd-cni $1 -> exit $RC ${OUT:0:400}"
    [ -n "$ERR" ] && echo "$ERR" | sed 's/^/     stderr: /'
    return 0
}

step "guest setup: lo up, drivers loaded, eth0 up with carrier"
ip link set lo up
modprobe -a igb igbvf
wait_for "ls $P/net"
IF=$(ls $P/net | head -1)
ip link set "$IF" up
wait_for "[ \$(cat /sys/class/net/$IF/carrier) = 1 ]"
note "kernel $(uname -r); igb PF $IGB netdev $IF"
check "guest: curl, jq and ip available" command -v curl jq ip

step "start sriovd serve --sysfs /sys --unix $SOCK"
mkdir -p $DB_DIR
start_sriovd
check "sriovd /readyz answers 200 ready" wait_for "curl -sf $SRIOVD_URL/readyz | grep -q ready" 150
check "the Unix socket answers /readyz" curl -sf --unix-socket "$SOCK" http://sriovd/readyz

step "create 2 igbvf VFs through the API"
api POST /pfs/$IGB/vfs '{"count":2}'
check_eq "POST count 2 -> 201" "$STATUS" 201
check "VF 0 is igbvf with a netdev" \
    wait_for "[ -d $P/virtfn0/net ] && [ \$(basename \$(readlink $P/virtfn0/driver)) = igbvf ]"
VF0=$(basename "$(readlink $P/virtfn0)")
wait_for "curl -sf $SRIOVD_URL/vfs/$VF0 | jq -e '.interface != null'"
HOSTIF=$(ls $P/virtfn0/net | head -1)
HOST_MTU=$(linkf "$HOSTIF" mtu)
HOST_MAC=$(linkf "$HOSTIF" address)
check "$IF carrier back after enabling VFs" wait_for "[ \$(cat /sys/class/net/$IF/carrier) = 1 ]"
VF_BEFORE=$(ipvf 0)
note "VF 0 = $VF0, netdev $HOSTIF mtu $HOST_MTU mac $HOST_MAC; PF vf 0 line: $VF_BEFORE"

step "ADD: sriovd-cni moves $HOSTIF into $NETNS as net1 with MAC, VLAN, MTU"
ip netns add $NS
MAC=02:5a:00:00:c0:01
CONF=$(jq -nc --arg s "$SOCK" --arg d "$VF0" --arg m "$MAC" '{cniVersion: "1.1.0", name: "labnet",
    type: "sriovd-cni", socket: $s, deviceID: $d, vlan: 100, vlanQoS: 3, mac: $m, spoofchk: "off", trust: "on",
    mtu: 1400}')
cni ADD "$CONF"
check_eq "ADD exit status" "$RC" 0
RESULT=$OUT
check_eq "result cniVersion" "$(echo "$RESULT" | jq -r .cniVersion)" 1.1.0
check_eq "result interface name, sandbox, mac, mtu, pciID" \
    "$(echo "$RESULT" | jq -r '.interfaces[0] | [.name, .sandbox, .mac, .mtu, .pciID] | map(tostring) | join(",")')" \
    "net1,$NETNS,$MAC,1400,$VF0"
check_eq "ip -n $NS: net1's mtu" "$(linkf net1 mtu $NS)" 1400
check_eq "ip -n $NS: net1's mac" "$(linkf net1 address $NS)" "$MAC"
check "ip -n $NS: net1 is UP" sh -c "ip -n $NS -j link show dev net1 | jq -e '.[0].flags | index(\"UP\")'"
check_eq "in $NS, /sys/class/net/net1/device is the VF" \
    "$(basename "$(ip netns exec $NS readlink /sys/class/net/net1/device)")" "$VF0"
check "host: $HOSTIF is gone from the host namespace" sh -c "! ip link show dev $HOSTIF"
check "sysfs: $VF0 shows no netdev on the host" sh -c "[ -z \"\$(ls $P/virtfn0/net 2>/dev/null)\" ]"
VF_ADDED=$(ipvf 0)
note "PF vf 0 line after ADD: $VF_ADDED"
check_eq "ip link show $IF: vf 0 mac" "$(echo "$VF_ADDED" | jq -r .mac)" "$MAC"
check_eq "ip link show $IF: vf 0 vlan" "$(echo "$VF_ADDED" | jq -r .vlan)" 100
check_eq "ip link show $IF: vf 0 qos" "$(echo "$VF_ADDED" | jq -r .qos)" 3
check_eq "ip link show $IF: vf 0 spoofchk" "$(echo "$VF_ADDED" | jq -r .spoofchk)" false
check_eq "ip link show $IF: vf 0 trust" "$(echo "$VF_ADDED" | jq -r .trust)" true
api GET "/allocations?owner=cni:$CONTAINER/net1"
check_eq "sriovd: one active allocation of cni:$CONTAINER/net1" "$(j '[.items[] | .state] | join(",")')" active
check_eq "sriovd: the attachment recorded" \
    "$(j '.items[0].attachment | [.netns, .ifname, .original_ifname, .original_mtu] | map(tostring) | join(",")')" \
    "$NETNS,net1,$HOSTIF,$HOST_MTU"
check_eq "sriovd: labels carry the pod" "$(j '.items[0].labels["k8s.pod.name"]')" pod-1
api GET /vfs/$VF0
check_eq "sriovd reads the VF while its netdev is in $NS: status" "$(j .status)" allocated
check_eq "sriovd: the VF's vlan as the kernel reports it" "$(j .settings.vlan)" 100
check "sriovd: an attached VF's netdev away is not netdev_missing" \
    sh -c "printf '%s' '$BODY' | jq -e '.health.reasons | index(\"netdev_missing\") | not'"

step "CHECK agrees with the namespace"
cni CHECK "$(echo "$CONF" | jq -c --argjson r "$RESULT" '. + {prevResult: $r}')"
check_eq "CHECK exit status" "$RC" 0
ip -n $NS link set net1 mtu 1300
cni CHECK "$(echo "$CONF" | jq -c --argjson r "$RESULT" '. + {prevResult: $r}')"
check_eq "CHECK after the MTU was changed in the namespace: exit status" "$RC" 1
check "CHECK's error names the MTU" sh -c "echo '$OUT' | grep -q 'MTU 1300'"
ip -n $NS link set net1 mtu 1400

step "sriovd restarts while the netdev is in $NS (reconciliation with the netdev away)"
kill -TERM $SRIOVD_PID
check "sriovd stopped" wait_for "! kill -0 $SRIOVD_PID"
start_sriovd
check "sriovd ready again" wait_for "curl -sf $SRIOVD_URL/readyz | grep -q ready" 150
api GET "/allocations?owner=cni:$CONTAINER/net1"
check_eq "after the restart: the allocation is still active" "$(j '.items[0].state')" active
api GET /vfs/$VF0
check_eq "after the restart: the VF is still allocated" "$(j .status)" allocated
check_eq "after the restart: the PF vf 0 line unchanged" "$(ipvf 0)" "$VF_ADDED"
check_eq "after the restart: net1 still in $NS with mtu 1400" "$(linkf net1 mtu $NS)" 1400

step "STATUS: VF 0 is held, VF 1 is free"
cni STATUS "$CONF"
check_eq "STATUS for the held deviceID: exit status" "$RC" 1
check_eq "STATUS for the held deviceID: code 50" "$(echo "$OUT" | jq -r .code)" 50
cni STATUS "$(echo "$CONF" | jq -c 'del(.deviceID) + {pf: "'$IGB'"}')"
check_eq "STATUS for the PF (VF 1 free): exit status" "$RC" 0
ip link set "$IF" down
check "sriovd sees the PF's link down (pf_link_down)" \
    wait_for "curl -sf $SRIOVD_URL/pfs/$IGB | jq -e '.health.reasons | index(\"pf_link_down\")'" 150
cni STATUS "$(echo "$CONF" | jq -c 'del(.deviceID) + {pf: "'$IGB'"}')"
check_eq "STATUS with the PF's link down: code 51 (existing attachments limited too)" "$(echo "$OUT" | jq -r .code)" 51
ip link set "$IF" up
check "the PF's link and health back" wait_for "[ \$(cat /sys/class/net/$IF/carrier) = 1 ] && \
    curl -sf $SRIOVD_URL/pfs/$IGB | jq -e '.health.status == \"ok\"'" 150
cni STATUS "$(echo "$CONF" | jq -c 'del(.deviceID) + {pf: "'$IGB'"}')"
check_eq "STATUS with the link back: exit status" "$RC" 0

step "DEL: the netdev comes home under its name and MTU; sriovd restores the VF"
cni DEL "$(echo "$CONF" | jq -c --argjson r "$RESULT" '. + {prevResult: $r}')"
check_eq "DEL exit status" "$RC" 0
check_eq "host: $HOSTIF back, mtu" "$(linkf "$HOSTIF" mtu)" "$HOST_MTU"
check_eq "host: $HOSTIF's own MAC back" "$(linkf "$HOSTIF" address)" "$HOST_MAC"
check_eq "sysfs: $VF0's netdev is $HOSTIF again" "$(ls $P/virtfn0/net 2>/dev/null)" "$HOSTIF"
check "ip -n $NS: net1 is gone" sh -c "! ip -n $NS link show dev net1"
check "ip -n $NS: no link but lo" sh -c "[ \"\$(ip -n $NS -j link show | jq -r '[.[].ifname] | join(\",\")')\" = lo ]"
VF_AFTER=$(ipvf 0)
note "PF vf 0 line after DEL: $VF_AFTER"
check_eq "ip link show $IF: vf 0 restored (mac, vlan, qos, spoofchk, trust)" "$VF_AFTER" "$VF_BEFORE"
api GET "/allocations?state=all&owner=cni:$CONTAINER/net1"
check_eq "sriovd: the allocation is released" "$(j '[.items[] | .state] | join(",")')" released
api GET /vfs/$VF0
check_eq "sriovd: VF 0 free again, its netdev seen" "$(j '[.status, .interface] | join(",")')" "free,$HOSTIF"

step "DEL again, and DEL with the namespace gone: both success"
cni DEL "$CONF"
check_eq "a second DEL: exit status" "$RC" 0
cni ADD "$CONF"
check_eq "ADD again: exit status" "$RC" 0
ip netns del $NS
check "the namespace's end returns the netdev to the host (as some name)" \
    wait_for "[ -n \"\$(ls $P/virtfn0/net 2>/dev/null)\" ]"
note "after the namespace ended, the kernel names it $(ls $P/virtfn0/net 2>/dev/null)"
cni DEL "$CONF"
check_eq "DEL with the namespace gone: exit status" "$RC" 0
check_eq "host: $HOSTIF back under its name, mtu" "$(linkf "$HOSTIF" mtu)" "$HOST_MTU"
check_eq "ip link show $IF: vf 0 restored" "$(ipvf 0)" "$VF_BEFORE"
api GET "/allocations?state=active&owner=cni:$CONTAINER/net1"
check_eq "sriovd: nothing active for the attachment" "$(j '.items | length')" 0

step "audit"
api GET "/audit?limit=500"
check "audit: the attachment was recorded" test "$(j '[.items[] | select(.action | test("attach"))] | length')" -ge 1

kill -TERM $SRIOVD_PID 2>/dev/null
wait $SRIOVD_PID 2>/dev/null
cp $DB_DIR/sriovd.db /lab-io/ 2>/dev/null
print_table
[ "$CHECKS_FAIL" = 0 ] && [ "$CHECKS_OK" -gt 0 ]
