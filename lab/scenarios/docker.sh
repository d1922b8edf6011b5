#!/bin/bash
# lab/scenarios/docker.sh - runs INSIDE the lab VM (see lab/test-docker.sh): sriovd's Docker network driver on the
# real igb/igbvf, the calls made over the plugin socket as dockerd makes them (POST, no Content-Type), and the VF's
# netdev moved into a network namespace and back as libnetwork does (move, rename to eth0, set its MAC).
# Env: LAB_SRIOVD (the sriovd binary), LAB_SCENARIOS (this folder). Prints a check table and `== result: ...`.
set -u
. "${LAB_SCENARIOS:-$(dirname "$0")}/lib.sh"
BIN=${LAB_SRIOVD:?LAB_SRIOVD names the sriovd binary}
IGB=0000:02:00.0
P=/sys/bus/pci/devices/$IGB
DB_DIR=/run/sriovd
PLUGIN=/run/docker/plugins/sriovd.sock
NS=dockerlab

# plugin CALL [BODY]: POST /NetworkDriver.CALL (or /CALL when it has a dot) as dockerd does; sets STATUS and BODY.
plugin() {
    local path=$1 out; out=$(mktemp)
    [[ $path == *.* ]] || path=NetworkDriver.$path
    STATUS=$(curl -s -o "$out" -w '%{http_code}' --unix-socket $PLUGIN -X POST \
        -H 'Accept: application/vnd.docker.plugins.v1.2+json' ${2:+--data "$2"} -H 'Content-Type:' \
        --max-time 120 "http://docker/$path")
    BODY=$(cat "$out"); rm -f "$out"
    echo "   > $path ${2:-} -> $STATUS $BODY"
}
ipvf() {
    ip -j -d link show "$IF" | jq -c '.[0].vfinfo_list[] | select(.vf == 0)
        | {mac: .address, vlan: (.vlan_list[0].vlan // 0), spoofchk}'
}

step "guest setup: igb with 2 VFs, sriovd serving the Docker plugin socket"
ip link set lo up
modprobe -a igb igbvf
wait_for "ls $P/net"
IF=$(ls $P/net | head -1)
ip link set "$IF" up
mkdir -p $DB_DIR /run/docker/plugins
"$BIN" serve --sysfs /sys --db $DB_DIR/sriovd.db --listen 127.0.0.1:8080 --docker-plugin $PLUGIN \
    --write-timeout 20 > /lab-io/sriovd.log 2>&1 &
SRIOVD_PID=$!
check "sriovd ready" wait_for "curl -sf $SRIOVD_URL/readyz | grep -q ready" 150
api POST /pfs/$IGB/vfs '{"count":2}'
check_eq "2 VFs created" "$STATUS" 201
check "VF 0 is igbvf with a netdev" wait_for "[ -d $P/virtfn0/net ]"
VF0=$(basename "$(readlink $P/virtfn0)")
SRC=$(ls $P/virtfn0/net | head -1)
MTU0=$(cat /sys/class/net/$SRC/mtu)
MAC0=$(cat /sys/class/net/$SRC/address)
VF_BEFORE=$(ipvf)
note "VF 0 $VF0 netdev $SRC mtu $MTU0 mac $MAC0; PF-side $VF_BEFORE"
check "$IF carrier back after enabling VFs" wait_for "[ \$(cat /sys/class/net/$IF/carrier) = 1 ]"

step "handshake"
plugin Plugin.Activate
check_eq "Plugin.Activate" "$BODY" '{"Implements":["NetworkDriver"]}'
plugin GetCapabilities
check_eq "GetCapabilities scope" "$(j .Scope)" local
plugin AllocateNetwork '{}'
check_eq "a call sriovd does not implement -> 404" "$STATUS" 404

step "CreateNetwork, CreateEndpoint, Join"
NET=$(printf 'n%063d' 1); EP=$(printf 'e%063d' 1)
plugin CreateNetwork "{\"NetworkID\":\"$NET\",\"Options\":{\"com.docker.network.generic\":{\"vf\":\"$VF0\",\"vlan\":\"5000\"}}}"
check_eq "vlan 5000 refused 422" "$STATUS" 422
check "its Err names the option" grep -q -- "--opt vlan" <<<"$BODY"
plugin CreateNetwork "{\"NetworkID\":\"$NET\",\"Options\":{\"com.docker.network.generic\":{\"vf\":\"$VF0\",\"vlan\":\"100\",\"mtu\":\"1400\",\"spoof_check\":\"on\"}},\"IPv4Data\":[{\"Pool\":\"10.20.0.0/24\",\"Gateway\":\"10.20.0.1/24\"}]}"
check_eq "CreateNetwork" "$BODY" '{}'
plugin CreateEndpoint "{\"NetworkID\":\"$NET\",\"EndpointID\":\"$EP\",\"Interface\":{\"Address\":\"10.20.0.2/24\"}}"
MAC=$(j .Interface.MacAddress)
check "CreateEndpoint answers a MAC" test -n "$MAC"
check_eq "PF-side VF 0 has the MAC and VLAN 100 (ip -d link)" "$(ipvf | jq -c '[.mac, .vlan]')" "[\"$MAC\",100]"
plugin Join "{\"NetworkID\":\"$NET\",\"EndpointID\":\"$EP\",\"SandboxKey\":\"/var/run/docker/netns/lab\",\"Options\":{}}"
check_eq "Join SrcName is VF 0's netdev" "$(j .InterfaceName.SrcName)" "$SRC"
check_eq "Join DstPrefix" "$(j .InterfaceName.DstPrefix)" eth
check_eq "the netdev has the network's MTU" "$(cat /sys/class/net/$SRC/mtu)" 1400

step "what libnetwork does: move the netdev into the sandbox as eth0, set its MAC, and back"
ip netns add $NS
check "moved into the namespace as eth0" ip link set "$SRC" netns $NS name eth0
MACSET=$(ip -n $NS link set eth0 address "$MAC" 2>&1 && echo ok)
note "ip link set eth0 address $MAC in the namespace: ${MACSET:-refused}"
check_eq "eth0 in the namespace: MTU" "$(ip -n $NS -j link show eth0 | jq -r '.[0].mtu')" 1400
check_eq "eth0 in the namespace: MAC" "$(ip -n $NS -j link show eth0 | jq -r '.[0].address')" "$MAC"
api GET /vfs/$VF0
check_eq "sriovd reads the VF while its netdev is elsewhere (device.interface null)" "$(j .device.interface)" null
plugin Leave "{\"NetworkID\":\"$NET\",\"EndpointID\":\"$EP\"}"
check_eq "Leave" "$BODY" '{}'
check "moved back under its own name" ip -n $NS link set eth0 netns 1 name "$SRC"
plugin DeleteEndpoint "{\"NetworkID\":\"$NET\",\"EndpointID\":\"$EP\"}"
check_eq "DeleteEndpoint" "$BODY" '{}'
check_eq "the netdev's MTU is back" "$(cat /sys/class/net/$SRC/mtu)" "$MTU0"
check_eq "PF-side VF 0 restored (MAC, VLAN, spoof check)" "$(ipvf)" "$VF_BEFORE"
note "the netdev's MAC after the release: $(cat /sys/class/net/$SRC/address) (before the endpoint: $MAC0)"
api GET "/audit?action=docker.endpoint.delete"
note "docker.endpoint.delete details: $(j -c '.items[-1].details')"
api GET /vfs/$VF0
check_eq "VF 0 is free and healthy again (not dirty)" "$(j -c '[.allocation, .health.status]')" '[null,"ok"]'

api GET "/allocations?owner=docker:$NET/$EP&state=all"
check_eq "the allocation is released" "$(j '.items[0].state')" released
plugin DeleteEndpoint "{\"NetworkID\":\"$NET\",\"EndpointID\":\"$EP\"}"
check_eq "DeleteEndpoint again is {}" "$BODY" '{}'
plugin DeleteNetwork "{\"NetworkID\":\"$NET\"}"
check_eq "DeleteNetwork" "$BODY" '{}'
ip netns del $NS

kill -TERM $SRIOVD_PID; wait $SRIOVD_PID
check_eq "sriovd exit status after SIGTERM" "$?" 0
print_table
[ "$CHECKS_FAIL" = 0 ]
