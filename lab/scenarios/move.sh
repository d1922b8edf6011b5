#!/bin/bash
# lab/scenarios/move.sh - runs INSIDE the lab VM (see lab/test-move.sh): moves an allocation between two VFs of
# the real igb with sriovd (POST /allocations/{id}/move naming the same PF), and checks with `ip link` that the
# new VF has the identity (MAC and VLAN) and the old one is restored; then cordon refuses, drain reports.
# Env: LAB_SRIOVD (the sriovd binary built on the host), LAB_SCENARIOS (this folder).
set -u
. "${LAB_SCENARIOS:-$(dirname "$0")}/lib.sh"
BIN=${LAB_SRIOVD:?LAB_SRIOVD names the sriovd binary}
IGB=0000:02:00.0
P=/sys/bus/pci/devices/$IGB
DB_DIR=/run/sriovd
ipvf() {
    ip -j -d link show "$IF" | jq -c --argjson n "$1" '.[0].vfinfo_list[] | select(.vf == $n)
        | {mac: .address, vlan: (.vlan_list[0].vlan // 0)}'
}

step "guest setup"
ip link set lo up
modprobe -a igb igbvf
wait_for "ls $P/net"
IF=$(ls $P/net | head -1)
ip link set "$IF" up
mkdir -p $DB_DIR
"$BIN" serve --sysfs /sys --db $DB_DIR/sriovd.db --listen 127.0.0.1:8080 --write-timeout 20 \
    > /lab-io/sriovd.log 2>&1 &
SRIOVD_PID=$!
check "sriovd ready" wait_for "curl -sf $SRIOVD_URL/readyz | grep -q ready" 150
api POST /pfs/$IGB/vfs '{"count":2}'
check_eq "2 igb VFs created" "$STATUS" 201
wait_for "[ -d $P/virtfn1/net ]"

step "allocate VF 0 with a MAC and VLAN, move it to VF 1 of the same igb"
api POST /allocations "{\"owner\":\"lab:move\",\"vf\":\"$(basename "$(readlink $P/virtfn0)")\",\"config\":{\"mac\":\"02:18:00:00:00:01\",\"vlan\":118}}"
check_eq "allocation -> 201" "$STATUS" 201
ID=$(j .id); GEN=$(j .generation)
check_eq "ip link: VF 0 has the identity" "$(ipvf 0)" '{"mac":"02:18:00:00:00:01","vlan":118}'
api POST /allocations/$ID/move "{\"pf\":\"$IGB\"}"
check_eq "move -> 200" "$STATUS" 200
check_eq "the allocation is on VF index 1" "$(j .vf_index)" 1
check "the generation grew" test "$(j .generation)" -gt "$GEN"
check_eq "ip link: VF 1 has the MAC and VLAN" "$(ipvf 1)" '{"mac":"02:18:00:00:00:01","vlan":118}'
check_eq "ip link: VF 0 restored" "$(ipvf 0)" '{"mac":"00:00:00:00:00:00","vlan":0}'
api GET "/audit?action=allocation.move&target=$ID"
check_eq "the move event names both VFs" "$(j '.items[-1].details | [.from_vf, .to_vf] | join(" ")')" \
    "$(basename "$(readlink $P/virtfn0)") $(basename "$(readlink $P/virtfn1)")"
api DELETE "/allocations/$ID?generation=$GEN"
check_eq "a release naming the old generation -> 409" "$STATUS" 409
check_eq "ip link: VF 1 untouched by it" "$(ipvf 1)" '{"mac":"02:18:00:00:00:01","vlan":118}'

step "cordon and drain on the one igb: nothing else to move to"
api POST /pfs/$IGB/drain
check_eq "drain -> 200" "$STATUS" 200
check_eq "the allocation stays, named with its reason" "$(j '.allocations[0].outcome')" stayed
note "reason: $(j '.allocations[0].reason')"
api POST /allocations '{"owner":"lab:new","pf":"'$IGB'"}'
check_eq "a new allocation on the cordoned igb -> 409 pf-cordoned" "$(j .type)" urn:sriovd:problem:pf-cordoned
api DELETE /allocations/$ID
check_eq "release -> 204" "$STATUS" 204
check_eq "ip link: VF 1 restored" "$(ipvf 1)" '{"mac":"00:00:00:00:00:00","vlan":0}'
api DELETE /pfs/$IGB/cordon
api DELETE /pfs/$IGB/vfs
kill -TERM $SRIOVD_PID; wait $SRIOVD_PID
print_table
[ "$CHECKS_FAIL" = 0 ]
