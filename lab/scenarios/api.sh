#!/bin/bash
# lab/scenarios/api.sh - runs INSIDE the lab VM (see lab/test-api.sh): serves the real /sys with sriovd and
# drives the whole API with curl, checking every answer against `ip -j -d link` and sysfs.
# Env: LAB_SRIOVD (the sriovd binary, built on the host; not SRIOVD_*, which sriovd reads as options), LAB_SCENARIOS (this folder).
# Prints a table of checks and `== result: PASS|FAIL`; exits non-zero on any failed check.
set -u
. "${LAB_SCENARIOS:-$(dirname "$0")}/lib.sh"
BIN=${LAB_SRIOVD:?LAB_SRIOVD names the sriovd binary}
IGB=0000:02:00.0
NVME=0000:01:00.0
P=/sys/bus/pci/devices/$IGB
N=/sys/bus/pci/devices/$NVME
# The database lives on the guest's tmpfs: SQLite's WAL needs shared mmap, which the 9p /lab-io lacks
# (sriovd refuses to start there with SQLITE_IOERR_SHMMAP). It is copied to /lab-io at the end.
DB_DIR=/run/sriovd

# vf0 view from iproute2: the fields sriovd sets, normalised; FULL=1 gives the whole record.
ipvf() {
    ip -j -d link show "$IF" | jq -c --argjson n "${1:-0}" '.[0].vfinfo_list[] | select(.vf == $n)
        | {mac: .address, vlan: (.vlan_list[0].vlan // 0), qos: (.vlan_list[0].qos // 0),
           spoofchk, trust, link_state, max_tx_rate: .rate.max_tx, min_tx_rate: .rate.min_tx}'
}
ipvf_full() { ip -j -d link show "$IF" | jq -cS --argjson n "${1:-0}" '.[0].vfinfo_list[] | select(.vf == $n)'; }
drv() { local l; l=$(readlink "$1/driver" 2>/dev/null) && basename "$l" || echo none; }

step "guest setup: lo up, drivers loaded, eth0 up with carrier"
ip link set lo up
modprobe -a igb igbvf nvme vfio-pci
wait_for "ls $P/net" && wait_for "[ -e $N/driver ]"
IF=$(ls $P/net | head -1)
ip link set "$IF" up
wait_for "[ \$(cat /sys/class/net/$IF/carrier) = 1 ]"
note "kernel $(uname -r); igb PF $IGB netdev $IF carrier $(cat /sys/class/net/$IF/carrier)," \
     "sriov_totalvfs $(cat $P/sriov_totalvfs); NVMe PF $NVME sriov_totalvfs $(cat $N/sriov_totalvfs)"
note "$IF speed $(cat /sys/class/net/$IF/speed 2>&1), operstate $(cat /sys/class/net/$IF/operstate)"
check "guest: curl and jq available" command -v curl jq

step "start sriovd serve --sysfs /sys"
mkdir -p $DB_DIR
"$BIN" serve --sysfs /sys --db $DB_DIR/sriovd.db --listen 127.0.0.1:8080 --write-timeout 20 \
    > /lab-io/sriovd.log 2>&1 &
SRIOVD_PID=$!
check "sriovd /readyz answers 200 ready" wait_for "curl -sf $SRIOVD_URL/readyz | grep -q ready" 150
note "ready after $(elapsed) s (pid $SRIOVD_PID)"
api GET /pfs
check_eq "GET /pfs lists both PCI PFs" "$(j '[.items[].address] | sort | join(",")')" "$NVME,$IGB"
check_eq "igb PF total_vfs" "$(j ".items[] | select(.address==\"$IGB\") | .total_vfs")" 7
check_eq "igb PF link: interface, state, speed" \
    "$(j ".items[] | select(.address==\"$IGB\") | [(.interfaces | join(\" \")), .link.state, .link.speed_mbps] | map(tostring) | join(\",\")")" "$IF,up,1000"

# ---------------------------------------------------------------------------------------------------------
step "1a. igb: create 4 VFs through the API"
api POST /pfs/$IGB/vfs '{"count":4}'
check_eq "POST count 4 -> 201" "$STATUS" 201
check_eq "change.enabled" "$(j .change.enabled)" 4
check_eq "change.partial" "$(j .change.partial)" false
check_eq "response lists 4 VFs" "$(j '.vfs | length')" 4
check_eq "sysfs sriov_numvfs" "$(cat $P/sriov_numvfs)" 4
check "VF 0 (02:10.0) is igbvf with a netdev" wait_for "[ -d $P/virtfn0/net ] && [ \$(basename \$(readlink $P/virtfn0/driver)) = igbvf ]"
VF0=$(basename "$(readlink $P/virtfn0)")
check_eq "VF 0 address" "$VF0" 0000:02:10.0
check_eq "ip -j -d link shows 4 VFs" "$(ip -j -d link show "$IF" | jq '.[0].vfinfo_list | length')" 4

step "1b. igb: allocate VF 0 with mac, vlan, qos, spoof_check, trust, max_tx_rate"
# Enabling VFs resets igb's link for a second or two, and igb refuses a max rate while the link is down.
check "$IF carrier back after enabling VFs" wait_for "[ \$(cat /sys/class/net/$IF/carrier) = 1 ]"
BEFORE=$(ipvf 0); BEFORE_FULL=$(ipvf_full 0)
note "ip before: $BEFORE"
api GET /vfs/$VF0
SETTINGS_BEFORE=$(j -c .settings)
CONFIG='{"mac":"02:5a:00:00:00:01","vlan":100,"qos":2,"spoof_check":false,"trust":true,"max_tx_rate":100}'
api POST /allocations "{\"owner\":\"lab:api/netdev\",\"vf\":\"$VF0\",\"labels\":{\"lab\":\"api\"},\"config\":$CONFIG}"
check_eq "POST /allocations with config -> 201" "$STATUS" 201
A1=$(j .id)
check_eq "allocation.vf" "$(j .vf)" "$VF0"
check_eq "allocation.state" "$(j .state)" active
check_eq "allocation.device.driver" "$(j .device.driver)" igbvf
check_eq "allocation.device.interface is VF 0's netdev" "$(j .device.interface)" "$(ls $P/virtfn0/net 2>/dev/null)"
AFTER=$(ipvf 0)
note "ip after:  $AFTER"
check_eq "ip: vf 0 mac" "$(echo "$AFTER" | jq -r .mac)" 02:5a:00:00:00:01
check_eq "ip: vf 0 vlan" "$(echo "$AFTER" | jq -r .vlan)" 100
check_eq "ip: vf 0 qos" "$(echo "$AFTER" | jq -r .qos)" 2
check_eq "ip: vf 0 spoofchk" "$(echo "$AFTER" | jq -r .spoofchk)" false
check_eq "ip: vf 0 trust" "$(echo "$AFTER" | jq -r .trust)" true
check_eq "ip: vf 0 max_tx_rate" "$(echo "$AFTER" | jq -r .max_tx_rate)" 100
check_eq "ip: vf 1 untouched" "$(ipvf 1 | jq -c 'del(.vf)')" "$(echo "$BEFORE" | jq -c 'del(.vf)')"
api GET /vfs/$VF0
check_eq "GET /vfs/VF0 status" "$(j .status)" allocated
check_eq "GET /vfs/VF0 settings agree with ip" \
    "$(j -c '.settings | {mac, vlan, qos, spoof_check, trust, max_tx_rate}')" \
    '{"mac":"02:5a:00:00:00:01","vlan":100,"qos":2,"spoof_check":false,"trust":true,"max_tx_rate":100}'

step "2a. resize while a VF is held: 409"
api POST /pfs/$IGB/vfs '{"count":2}'
check_eq "POST count 2 while held -> 409" "$STATUS" 409
check_eq "problem type" "$(j .type)" urn:sriovd:problem:vfs-held
check_eq "problem names the held VF" "$(j -c .allocated_vfs)" "[\"$VF0\"]"
check_eq "sysfs sriov_numvfs unchanged" "$(cat $P/sriov_numvfs)" 4
api DELETE /pfs/$IGB/vfs
check_eq "DELETE /pfs/igb/vfs while held -> 409" "$STATUS" 409
check_eq "ip: vf 0 still configured" "$(ipvf 0)" "$AFTER"

step "1c. release: every setting back as before"
api DELETE /allocations/$A1
check_eq "DELETE /allocations/A1 -> 204" "$STATUS" 204
RESTORED=$(ipvf 0)
note "ip restored: $RESTORED"
check_eq "ip: vf 0 mac restored" "$(echo "$RESTORED" | jq -r .mac)" "$(echo "$BEFORE" | jq -r .mac)"
check_eq "ip: vf 0 vlan restored" "$(echo "$RESTORED" | jq -r .vlan)" "$(echo "$BEFORE" | jq -r .vlan)"
check_eq "ip: vf 0 qos restored" "$(echo "$RESTORED" | jq -r .qos)" "$(echo "$BEFORE" | jq -r .qos)"
check_eq "ip: vf 0 spoofchk restored" "$(echo "$RESTORED" | jq -r .spoofchk)" "$(echo "$BEFORE" | jq -r .spoofchk)"
check_eq "ip: vf 0 trust restored" "$(echo "$RESTORED" | jq -r .trust)" "$(echo "$BEFORE" | jq -r .trust)"
check_eq "ip: vf 0 max_tx_rate restored" "$(echo "$RESTORED" | jq -r .max_tx_rate)" "$(echo "$BEFORE" | jq -r .max_tx_rate)"
check_eq "ip: vf 0 whole record as before" "$(ipvf_full 0)" "$BEFORE_FULL"
check_eq "VF 0 driver still igbvf" "$(drv $P/virtfn0)" igbvf
api GET /vfs/$VF0
check_eq "GET /vfs/VF0 free again" "$(j .status)" free
check_eq "GET /vfs/VF0 settings as before" "$(j -c .settings)" "$SETTINGS_BEFORE"
api GET "/allocations/$A1"
check_eq "released allocation kept as history" "$(j .state)" released
api DELETE /allocations/$A1
check_eq "second DELETE -> 404" "$STATUS" 404

step "1d. allocate with driver vfio-pci: /dev/vfio/N"
api POST /allocations "{\"owner\":\"lab:api/vfio\",\"pf\":\"$IGB\",\"config\":{\"driver\":\"vfio-pci\"}}"
check_eq "POST /allocations driver vfio-pci -> 201" "$STATUS" 201
A2=$(j .id); V2=$(j .vf); G2=$(j .device.iommu_group); VFIO2=$(j .device.vfio_device)
note "allocation $A2 on $V2, iommu_group $G2, vfio_device $VFIO2"
D2=/sys/bus/pci/devices/$V2
check_eq "device.driver" "$(j .device.driver)" vfio-pci
check_eq "device.interface is null" "$(j .device.interface)" null
check_eq "sysfs: VF bound to vfio-pci" "$(drv $D2)" vfio-pci
check_eq "device.iommu_group = sysfs iommu_group" "$G2" "$(basename "$(readlink $D2/iommu_group)")"
check_eq "device.vfio_device" "$VFIO2" "/dev/vfio/$G2"
check "/dev/vfio/$G2 exists (character device)" test -c "/dev/vfio/$G2"
check "VF has no netdev while on vfio-pci" test ! -e "$D2/net"
note "ls /dev/vfio: $(ls /dev/vfio | tr '\n' ' ')"
api DELETE /allocations/$A2
check_eq "DELETE /allocations/A2 -> 204" "$STATUS" 204
check_eq "sysfs: VF back on igbvf" "$(drv $D2)" igbvf
check "VF netdev back" wait_for "ls $D2/net"
note "VF netdev: $(ls $D2/net 2>/dev/null)"
check_eq "driver_override cleared" "$(cat $D2/driver_override)" "(null)"
check "/dev/vfio/$G2 gone" wait_for "[ ! -e /dev/vfio/$G2 ]"
api GET /vfs/$V2
check_eq "GET /vfs: free, igbvf, with interface" "$(j '[.status, .driver, (.interface != null)] | join(",")')" "free,igbvf,true"

# ---------------------------------------------------------------------------------------------------------
step "2b. EBUSY from the kernel, directly"
check_eq "echo 3 > sriov_numvfs while 4 exist" "$(sysfs_write $P/sriov_numvfs 3)" "Device or resource busy"
check_eq "sriov_numvfs still 4" "$(cat $P/sriov_numvfs)" 4

step "2c. EBUSY through the API: another writer changes sriov_numvfs underneath sriovd"
# sriovd rereads sriov_numvfs under its PF lock and resizes M -> N as 0 then N, so its own view is never
# stale and it never provokes EBUSY by itself. A second writer (another tool, an operator's echo) that
# enables VFs between sriovd's two writes does: here a loop keeps writing 1 (EBUSY for it, cheaply, while
# VFs exist), so it wins the moment sriovd has written 0, and sriovd's write of N meets EBUSY.
api POST /pfs/$IGB/vfs '{"count":2,"drivers_autoprobe":false}'
check_eq "POST count 2 (autoprobe off: faster VF churn) -> 201" "$STATUS" 201
( while :; do echo 1 > $P/sriov_numvfs; done ) 2>/dev/null &
RACER=$!
BUSY=""; attempt=0; want=2; race_start=$(date +%s)
while [ $(( $(date +%s) - race_start )) -lt 120 ]; do
    attempt=$((attempt + 1)); want=$((want == 3 ? 2 : 3))
    api POST /pfs/$IGB/vfs "{\"count\":$want}"
    if [ "$STATUS" = 409 ] && [ "$(j .type)" = urn:sriovd:problem:pf-busy ]; then BUSY=$BODY; break; fi
done
kill $RACER; wait $RACER 2>/dev/null
note "EBUSY after $attempt attempt(s), $(( $(date +%s) - race_start )) s; sriov_numvfs now $(cat $P/sriov_numvfs) (the other writer's)"
BODY=$BUSY
check_eq "a kernel EBUSY becomes 409 pf-busy" "$(j .type)" urn:sriovd:problem:pf-busy
check "pf-busy detail names EBUSY" grep -q EBUSY <<<"$(j .detail)"
api GET /pfs/$IGB
check_eq "GET /pfs/igb num_vfs follows the kernel after the failure" "$(j .num_vfs)" "$(cat $P/sriov_numvfs)"
api GET "/audit?target=$IGB&action=hw.sysfs.write&limit=500"
check "audit: hw.sysfs.write sriov_numvfs failed with errno EBUSY" \
    test "$(j '[.items[] | select(.details.attribute == "sriov_numvfs" and .details.errno == "EBUSY" and .outcome == "failure")] | length')" -ge 1
api GET "/audit?target=$IGB&action=pf.vfs.set&limit=500"
check "audit: pf.vfs.set failure recorded with pf-busy" \
    test "$(j '[.items[] | select(.outcome == "failure" and ((.error // "") | test("busy|EBUSY"; "i")))] | length')" -ge 1
api POST /pfs/$IGB/vfs '{"count":4,"drivers_autoprobe":true}'
check_eq "after the other writer stops: count 4 -> 201" "$STATUS" 201
check_eq "sysfs sriov_numvfs" "$(cat $P/sriov_numvfs)" 4

# ---------------------------------------------------------------------------------------------------------
step "3a. ERANGE: 8 VFs on igb (sriov_totalvfs 7)"
check_eq "kernel: echo 8 > sriov_numvfs" "$(sysfs_write $P/sriov_numvfs 8)" "Numerical result out of range"
api POST /pfs/$IGB/vfs '{"count":8}'
check_eq "POST count 8 -> 422" "$STATUS" 422
check_eq "problem type" "$(j .type)" urn:sriovd:problem:count-out-of-range
check_eq "problem total_vfs" "$(j .total_vfs)" 7
check_eq "problem errno" "$(j .errno)" ERANGE
check_eq "problem field" "$(j .field)" count
check_eq "sysfs sriov_numvfs unchanged" "$(cat $P/sriov_numvfs)" 4

step "3b. ENOENT: no PF driver bound"
echo $IGB > /sys/bus/pci/drivers/igb/unbind
check "igb PF unbound" test ! -e $P/driver
check_eq "kernel: unbinding the PF removed its VFs" "$(cat $P/sriov_numvfs)" 0
note "without igb, sriov_totalvfs reads $(cat $P/sriov_totalvfs) (igb limits it to 7 while bound)"
check_eq "kernel: echo 2 > sriov_numvfs" "$(sysfs_write $P/sriov_numvfs 2)" "No such file or directory"
api POST /pfs/$IGB/vfs '{"count":2}'
check_eq "POST count 2 with no driver -> 409" "$STATUS" 409
check_eq "problem type" "$(j .type)" urn:sriovd:problem:no-sriov-driver
check_eq "problem errno" "$(j .errno)" ENOENT
api GET "/audit?target=$IGB&action=hw.sysfs.write&limit=500"
check "audit: hw.sysfs.write sriov_numvfs failed with errno ENOENT" \
    test "$(j '[.items[] | select(.details.attribute == "sriov_numvfs" and .details.errno == "ENOENT")] | length')" -ge 1
api GET /pfs/$IGB
check_eq "GET /pfs/igb: driver null, 0 VFs" "$(j '[.driver, .num_vfs] | map(tostring) | join(",")')" "null,0"
echo $IGB > /sys/bus/pci/drivers/igb/bind
wait_for "ls $P/net"
api POST /pfs/$IGB/vfs '{"count":2}'
check_eq "after rebinding igb: count 2 -> 201" "$STATUS" 201
check_eq "sysfs sriov_numvfs" "$(cat $P/sriov_numvfs)" 2

# ---------------------------------------------------------------------------------------------------------
step "4. storage fault: the database refuses the completion of a PATCH /vfs; the igb VF is restored first"
# A watcher (db-lock-watcher.py, with the host's python3 and its sqlite3 module) polls the database for an open
# intent, committed by sriovd before its first hardware write, and then holds SQLite's write lock for 8 s, past
# sriovd's 5 s busy timeout, so that the completion (audit of the writes and intent, one transaction) is refused.
# sriovd must put vlan and trust back on the real igb VF before it answers 500 with hardware "restored". The
# race can be lost (the completion commits first): then the PATCH must be 200 with the VF at the new values, is
# set back, and is tried again, at most FAULT_TRIES times.
PY=/usr/bin/python3
WATCH="$PY ${LAB_SCENARIOS:-$(dirname "$0")}/db-lock-watcher.py"
FAULT_TRIES=10
IF=$(ls $P/net | head -1)
check "guest: python3 with sqlite3 for the lock watcher" $PY -c 'import sqlite3'
check "VF 0 (02:10.0) back on igbvf after the rebind" wait_for "[ \$(basename \$(readlink $P/virtfn0/driver)) = igbvf ]"
open_intents() { $PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM intents WHERE completed_at IS NULL").fetchone()[0])' $DB_DIR/sriovd.db; }
check_eq "no open intent before the fault" "$(open_intents)" 0
PREV=$(ipvf 0); PREV_FULL=$(ipvf_full 0)
PREV_VLAN=$(echo "$PREV" | jq -r .vlan); PREV_TRUST=$(echo "$PREV" | jq -r .trust)
note "ip before: $PREV"
check "VF 0 is not already at vlan 55 / trust on" test "$PREV_VLAN/$PREV_TRUST" != 55/true
FAULT=""; LOST_OK=1; tries=0; WSTATE=/run/sriovd/watcher.state
while [ $tries -lt $FAULT_TRIES ]; do
    tries=$((tries + 1))
    rm -f $WSTATE
    # The audit of this attempt is what follows the last event on record now.
    FLOOR=$(curl -s "$SRIOVD_URL/audit?target=$VF0&limit=500" | jq '[.items[].id] | max // 0')
    $WATCH $DB_DIR/sriovd.db 8 $WSTATE 60 &
    WATCHER=$!
    wait_for "grep -q ready $WSTATE" 150 || { kill $WATCHER 2>/dev/null; break; }
    api PATCH /vfs/$VF0 '{"vlan":55,"trust":true}'
    if [ "$STATUS" = 500 ]; then
        FAULT=$BODY; wait $WATCHER
        note "attempt $tries: the watcher says: $(cat $WSTATE)"
        break
    fi
    kill $WATCHER 2>/dev/null; wait $WATCHER 2>/dev/null
    GOT=$(ipvf 0)
    note "attempt $tries lost the race ($STATUS; watcher: $(cat $WSTATE)); ip: $GOT"
    if [ "$STATUS" != 200 ] || [ "$(echo "$GOT" | jq -r '"\(.vlan)/\(.trust)"')" != 55/true ]; then LOST_OK=0; fi
    api PATCH /vfs/$VF0 "{\"vlan\":$PREV_VLAN,\"trust\":$PREV_TRUST}"
    [ "$STATUS" = 200 ] || LOST_OK=0
done
check "the fault hit a PATCH within $FAULT_TRIES attempts (took $tries)" test -n "$FAULT"
check "every attempt that lost the race answered 200 with vlan 55 / trust on, and was set back" test $LOST_OK = 1
BODY=$FAULT
check_eq "PATCH /vfs under the fault -> 500 problem type" "$(j .type)" urn:sriovd:problem:storage-error
check_eq "problem hardware" "$(j .hardware)" restored
AFTER_FAULT=$(ipvf 0)
note "ip after the 500: $AFTER_FAULT"
check_eq "ip: vf 0 vlan back at its previous value" "$(echo "$AFTER_FAULT" | jq -r .vlan)" "$PREV_VLAN"
check_eq "ip: vf 0 trust back at its previous value" "$(echo "$AFTER_FAULT" | jq -r .trust)" "$PREV_TRUST"
check_eq "ip: vf 0 whole record as before" "$(ipvf_full 0)" "$PREV_FULL"
api GET /vfs/$VF0
check_eq "GET /vfs/VF0: free, vlan and trust as before" "$(j -c '[.status, .settings.vlan, .settings.trust]')" \
    "[\"free\",$PREV_VLAN,$PREV_TRUST]"
check "the lock is let go (watcher done)" wait_for "grep -q released $WSTATE"
check "/readyz 200 once the database commits again" wait_for "curl -sf $SRIOVD_URL/readyz | grep -q ready"
api POST /reconcile
check_eq "POST /reconcile after the fault -> 200" "$STATUS" 200
note "intent actions of the reconcile: $(j -c '[.actions[] | select(.kind | startswith("intent"))]')"
check_eq "no open intent left after POST /reconcile" "$(open_intents)" 0
api GET "/audit?target=$VF0&limit=500"
BODY=$(j -c --argjson floor "$FLOOR" '{items: [.items[] | select(.id > $floor)]}')
note "audit of the faulted attempt: $(j -c '[.items[] | "\(.action) \(.outcome) \(.details.operation // "") \(.details.value // "")"]')"
RECOVERED=$(j '[.items[] | select(.action == "intent.recover")] | length')
check "audit: the vlan 55 and trust on writes, then the undo's vlan $PREV_VLAN write, are on record (or intent.recover)" \
    test "$(j "[.items[] | select(.action == \"hw.netlink.write\" and .details.operation == \"vf.vlan\" and (.details.value | startswith(\"vlan=55 \")))] | length")" -ge 1 -a \
         "$(j '[.items[] | select(.action == "hw.netlink.write" and .details.operation == "vf.trust" and .details.value == "on")] | length')" -ge 1 -a \
         "$(j "[.items[] | select(.action == \"hw.netlink.write\" and .details.operation == \"vf.vlan\" and (.details.value | startswith(\"vlan=$PREV_VLAN \")))] | length")" -ge 1 \
    -o "$RECOVERED" -ge 1
check "audit: vf.update failure with storage-error (or intent.recover)" \
    test "$(j '[.items[] | select(.action == "vf.update" and .outcome == "failure" and ((.error // "") | startswith("storage-error")))] | length')" -ge 1 \
    -o "$RECOVERED" -ge 1
api PATCH /vfs/$VF0 '{"vlan":55,"trust":true}'
check_eq "without the fault the same PATCH -> 200" "$STATUS" 200
check_eq "ip: vf 0 vlan/trust now 55/true" "$(ipvf 0 | jq -r '"\(.vlan)/\(.trust)"')" 55/true
api PATCH /vfs/$VF0 "{\"vlan\":$PREV_VLAN,\"trust\":$PREV_TRUST}"
check_eq "set back -> 200" "$STATUS" 200
check_eq "ip: vf 0 whole record as before again" "$(ipvf_full 0)" "$PREV_FULL"

# ---------------------------------------------------------------------------------------------------------
step "5. NVMe PF: VFs created unbound, one bound to vfio-pci and back"
api POST /pfs/$NVME/vfs '{"count":2,"drivers_autoprobe":false}'
check_eq "POST nvme count 2 autoprobe false -> 201" "$STATUS" 201
check_eq "change.enabled" "$(j .change.enabled)" 2
check_eq "sysfs sriov_drivers_autoprobe" "$(cat $N/sriov_drivers_autoprobe)" 0
check_eq "sysfs sriov_numvfs" "$(cat $N/sriov_numvfs)" 2
check_eq "VFs unbound" "$(drv $N/virtfn0),$(drv $N/virtfn1)" "none,none"
check_eq "API: VFs unbound" "$(j '[.vfs[].driver] | map(tostring) | join(",")')" "null,null"
api POST /allocations "{\"owner\":\"lab:api/nvme\",\"pf\":\"$NVME\",\"config\":{\"driver\":\"vfio-pci\"}}"
check_eq "POST /allocations nvme vfio-pci -> 201" "$STATUS" 201
A3=$(j .id); V3=$(j .vf); G3=$(j .device.iommu_group)
D3=/sys/bus/pci/devices/$V3
note "allocation $A3 on $V3, iommu_group $G3, vfio_device $(j .device.vfio_device)"
check_eq "sysfs: NVMe VF bound to vfio-pci" "$(drv $D3)" vfio-pci
check_eq "device.iommu_group = sysfs" "$G3" "$(basename "$(readlink $D3/iommu_group)")"
check_eq "device.vfio_device" "$(j .device.vfio_device)" "/dev/vfio/$G3"
check "/dev/vfio/$G3 exists" test -c "/dev/vfio/$G3"
api DELETE /allocations/$A3
check_eq "DELETE nvme allocation -> 204" "$STATUS" 204
check_eq "sysfs: NVMe VF unbound again" "$(drv $D3)" none
check_eq "driver_override cleared" "$(cat $D3/driver_override)" "(null)"
api GET /vfs/$V3
check_eq "GET /vfs: free and unbound" "$(j '[.status, .driver] | map(tostring) | join(",")')" "free,null"
api DELETE /pfs/$NVME/vfs
check_eq "DELETE /pfs/nvme/vfs -> 2xx" "${STATUS:0:1}" 2
check_eq "sysfs nvme sriov_numvfs" "$(cat $N/sriov_numvfs)" 0

# ---------------------------------------------------------------------------------------------------------
step "6. audit: every hardware write with its errno and duration"
: > /lab-io/audit.jsonl
after=""
while :; do
    api GET "/audit?limit=500${after:+&after=$after}" >/dev/null
    printf '%s' "$BODY" | jq -c '.items[]' >> /lab-io/audit.jsonl
    after=$(j '.next // empty')
    [ -n "$after" ] || break
done
AUD=/lab-io/audit.jsonl
acount() { jq -s "[.[] | select($1)] | length" $AUD; }
note "$(wc -l < $AUD) audit events; by action: $(jq -s -c 'group_by(.action) | map({(.[0].action): length}) | add' $AUD)"
check "audit: hw.sysfs.write events all carry errno and duration_ms" \
    test "$(acount '.action == "hw.sysfs.write" and (.details | has("errno") and (.duration_ms | type) == "number")')" -ge 1 -a \
         "$(acount '.action == "hw.sysfs.write" and ((.details | has("errno")) and (.details.duration_ms | type) == "number" | not)')" = 0
check "audit: hw.sysfs.write sriov_numvfs=4 on igb succeeded (errno null)" \
    test "$(acount ".action == \"hw.sysfs.write\" and .target == \"$IGB\" and .details.attribute == \"sriov_numvfs\" and .details.value == \"4\" and .details.errno == null and .outcome == \"success\"")" -ge 1
check "audit: hw.sysfs.write sriov_drivers_autoprobe=0 on NVMe" \
    test "$(acount ".action == \"hw.sysfs.write\" and .target == \"$NVME\" and .details.attribute == \"sriov_drivers_autoprobe\"")" -ge 1
check "audit: hw.sysfs.write EBUSY and ENOENT failures present" \
    test "$(acount '.action == "hw.sysfs.write" and .details.errno == "EBUSY"')" -ge 1 -a \
         "$(acount '.action == "hw.sysfs.write" and .details.errno == "ENOENT"')" -ge 1
check "audit: hw.netlink.write events all carry errno and duration_ms" \
    test "$(acount '.action == "hw.netlink.write" and (.details | has("errno")) and (.details.duration_ms | type) == "number"')" -ge 6 -a \
         "$(acount '.action == "hw.netlink.write" and ((.details | has("errno")) and (.details.duration_ms | type) == "number" | not)')" = 0
check "audit: hw.netlink.write for each config setting on VF 0 (mac, vlan, spoof, trust, rate)" \
    test "$(jq -s -r "[.[] | select(.action == \"hw.netlink.write\" and .target == \"$VF0\") | .details.operation] | unique | length" $AUD)" -ge 5
check "audit: driver binding writes for the vfio-pci allocations (driver_override / drivers_probe)" \
    test "$(acount '.action == "hw.sysfs.write" and ((.details.operation // .details.attribute // "") | test("driver_override|drivers_probe|unbind|bind"))')" -ge 4
check "audit: allocation.create and allocation.release for the 3 allocations" \
    test "$(acount '.action == "allocation.create" and .outcome == "success"')" -ge 3 -a \
         "$(acount '.action == "allocation.release" and .outcome == "success"')" -ge 3
note "hardware writes (action target operation/attribute value errno duration_ms):"
jq -r 'select(.action | startswith("hw.")) | "     \(.id) \(.action) \(.target) \(.details.operation // .details.attribute) \(.details.value) \(.details.errno) \(.details.duration_ms)ms"' $AUD

# ---------------------------------------------------------------------------------------------------------
step "7. a link set down behind sriovd's back: an event within a second (RTNLGRP_LINK), actor kernel"
# Rebinding igb (3b) left the netdev administratively down: bring it up, and see the inventory follow.
ip link set "$IF" up
wait_for "[ \$(cat /sys/class/net/$IF/carrier 2>/dev/null) = 1 ]" 150
note "$IF operstate $(cat /sys/class/net/$IF/operstate), carrier $(cat /sys/class/net/$IF/carrier 2>&1)"
check "the inventory shows $IF up before the test" \
    wait_for "curl -s $SRIOVD_URL/pfs/$IGB | jq -e '.link.state == \"up\"'" 75
rm -f /run/sriovd-link-events
curl -s -N -m 40 "$SRIOVD_URL/events?type=link.&pf=$IGB" > /run/sriovd-link-events &
CURL_PID=$!
check "GET /events stream open (text/event-stream, retry line)" wait_for "grep -q '^retry:' /run/sriovd-link-events" 25
T_DOWN=$(date +%s%N)
ip link set "$IF" down
# The target is a second on real hardware; this guest runs under software emulation (TCG), several times slower.
check "link.down event on $IGB within 3 s (emulated guest)" wait_for "grep -q '^event: link.down' /run/sriovd-link-events" 15
note "link.down seen after $(( ($(date +%s%N) - T_DOWN) / 1000000 )) ms (0.2 s polling)"
check "PF health degraded (pf_link_down) while its link is down" \
    wait_for "curl -s $SRIOVD_URL/pfs/$IGB | jq -e '.health.status == \"degraded\" and (.health.reasons | index(\"pf_link_down\"))'" 75
ip link set "$IF" up
check "link.up event once the link is back" wait_for "grep -q '^event: link.up' /run/sriovd-link-events" 75
check "PF health ok again" wait_for "curl -s $SRIOVD_URL/pfs/$IGB | jq -e '.health.status == \"ok\"'" 75
api GET /vfs/$VF0
note "igb VF 0 stats as the kernel reports them: $(j -c .stats)"
check_eq "GET /vfs/$VF0 reports stats (IFLA_VF_STATS; igb has no per-VF counters: zeros)" "$(j '.stats | type')" object
kill $CURL_PID 2>/dev/null; wait $CURL_PID 2>/dev/null
note "events seen: $(grep -c '^event:' /run/sriovd-link-events)"
check "the link events carry actor kernel and the PF" \
    test "$(grep '^data:' /run/sriovd-link-events | grep '"actor":"kernel"' | grep -c "\"pf\":\"$IGB\"")" -ge 2
api GET /pfs/$IGB
check "the inventory shows the link up again" wait_for "curl -s $SRIOVD_URL/pfs/$IGB | jq -e '.link.state == \"up\"'" 75

step "sriovd: SIGTERM exits 0"
kill -TERM $SRIOVD_PID
wait $SRIOVD_PID
check_eq "sriovd exit status after SIGTERM" "$?" 0
cp $DB_DIR/sriovd.db* /lab-io/ 2>/dev/null

print_table
[ "$CHECKS_FAIL" = 0 ]
