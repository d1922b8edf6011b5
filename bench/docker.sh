#!/usr/bin/env bash
# The Docker network driver's latency on the simulated host, as dockerd calls it over the plugin socket (one
# connection per call, no Content-Type): CreateEndpoint + Join (allocate the VF with VLAN and MAC, record the
# attachment, set the netdev's MTU) and Leave + DeleteEndpoint (put the MTU back, release and restore the VF). Side by
# side, the baseline: the same allocation and release through the REST API on sriovd's main Unix socket
# (POST /allocations + DELETE /allocations/{id}), so the figures show what the driver adds. Prints p50/p99.
# Needs root (a veth named as the simulated VF's netdev). CONFIG=debug uses the debug build; N sets the cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
if [ "${CONFIG:-release}" = release ]; then
    sriovd=$(scripts/build-release.sh)
else
    swift build >&2
    sriovd=$(swift build --show-bin-path)/sriovd
fi
work=$(mktemp -d)
netdev=ens3f0np0v0
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    ip link del "$netdev" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$sriovd" serve --simulate "$work/sim" --unix "$work/sriovd.sock" --docker-plugin "$work/plugin.sock" --listen none \
    --log-level error --no-access-log >/dev/null 2>"$work/sriovd.err" &
pid=$!
for _ in $(seq 100); do [ -S "$work/plugin.sock" ] && [ -S "$work/sriovd.sock" ] && break; sleep 0.05; done
ip link del "$netdev" 2>/dev/null || true
ip link add "$netdev" type veth peer name "p$netdev"
python3 - "$work/sriovd.sock" "$work/plugin.sock" "$N" <<'PY'
import http.client, json, socket, sys, time
api, plugin, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
VF = "0000:af:00.2"

class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

def call(path, method, url, body=None, headers=None):
    connection = Unix(path)
    data = json.dumps(body).encode() if body is not None else None
    connection.request(method, url, body=data, headers=headers or {})
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    if response.status >= 300:
        sys.exit(f"{method} {url}: {response.status} {answer.decode()}")
    return json.loads(answer) if answer else {}

def driver(name, body):
    return call(plugin, "POST", "/NetworkDriver." + name, body,
                {"Accept": "application/vnd.docker.plugins.v1.2+json"})

def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

def timed(body):
    start = time.perf_counter()
    body()
    return (time.perf_counter() - start) * 1000

driver("CreateNetwork", {"NetworkID": "bench", "Options": {"com.docker.network.generic":
       {"vf": VF, "vlan": "10", "mtu": "1400"}}, "IPv4Data": [{"Pool": "10.9.0.0/24", "Gateway": "10.9.0.1/24"}]})
attach, detach, alloc, release = [], [], [], []
for i in range(n):
    ep = {"NetworkID": "bench", "EndpointID": f"ep{i}"}
    attach.append(timed(lambda: (driver("CreateEndpoint", dict(ep, Interface={"Address": "10.9.0.2/24"})),
                                 driver("Join", dict(ep, SandboxKey=f"/var/run/docker/netns/b{i}")))))
    detach.append(timed(lambda: (driver("Leave", ep), driver("DeleteEndpoint", ep))))
    holder = {}
    json_headers = {"Content-Type": "application/json"}
    alloc.append(timed(lambda: holder.update(call(api, "POST", "/allocations", {"owner": f"bench:{i}", "vf": VF,
                 "config": {"vlan": 10, "mac": "02:00:00:00:be:01"}}, json_headers))))
    release.append(timed(lambda: call(api, "DELETE", "/allocations/" + holder["id"])))
driver("DeleteNetwork", {"NetworkID": "bench"})
print(f"{'n=' + str(n):24} {'p50':>9} {'p99':>9}")
for label, values in (("CreateEndpoint + Join", attach), ("  baseline POST /allocations", alloc),
                      ("Leave + DeleteEndpoint", detach), ("  baseline DELETE /allocations", release)):
    print(f"{label:30} {pct(values, 50):6.2f} ms {pct(values, 99):6.2f} ms")
PY
