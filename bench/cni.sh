#!/usr/bin/env bash
# sriovd-cni ADD and DEL latency on the simulated host, IPAM excluded: the plugin run as a runtime runs it (a new
# process each time, CNI_* in the environment, the configuration on stdin) against sriovd on its Unix socket, moving
# a veth named as the simulated VF's netdev into a network namespace and back. Prints p50/p99 of each; the target
# is p99 < 30 ms. Needs root (netns, veth). CONFIG=debug uses the debug build; N sets the number of cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
if [ "${CONFIG:-release}" = release ]; then
    swift build -c release --product sriovd-cni --static-swift-stdlib >&2
    sriovd=$(scripts/build-release.sh)
    bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
else
    swift build >&2
    bin=$(swift build --show-bin-path)
    sriovd=$bin/sriovd
fi
work=$(mktemp -d)
ns=cnibench$$
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    ip link del ens785f0v3 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$sriovd" serve --simulate "$work/sim" --unix "$work/sriovd.sock" --listen none --log-level error --no-access-log \
    >/dev/null 2>"$work/sriovd.err" &
pid=$!
for _ in $(seq 100); do [ -S "$work/sriovd.sock" ] && break; sleep 0.05; done
ip netns add "$ns"
ip link del ens785f0v3 2>/dev/null || true
ip link add ens785f0v3 type veth peer name pens785f0v3
python3 - "$bin/sriovd-cni" "$work/sriovd.sock" "/run/netns/$ns" "$N" <<'PY'
import json, statistics, subprocess, sys, time
plugin, socket, netns, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = {"cniVersion": "1.1.0", "name": "bench", "type": "sriovd-cni", "socket": socket, "deviceID": "0000:3b:02.3",
        "mtu": 1400}
def call(command, container, config):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": netns, "CNI_IFNAME": "net1",
           "CNI_PATH": "/usr/lib/cni"}
    start = time.perf_counter()
    done = subprocess.run([plugin], input=json.dumps(config).encode(), env=env, capture_output=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        sys.exit(f"{command} failed: {done.stdout.decode()} {done.stderr.decode()}")
    return elapsed
def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
# Without VF settings the allocation is one durable commit; with them sriovd records an intent, writes each setting
# over (simulated) rtnetlink, reads it back and audits it, and the release restores every setting the same way.
for label, extra in (("move only", {}), ("with vlan+mac", {"vlan": 10, "mac": "02:00:00:00:be:01"})):
    config = dict(base, **extra)
    adds, dels = [], []
    for i in range(n):
        adds.append(call("ADD", f"bench{i}", config))
        dels.append(call("DEL", f"bench{i}", config))
    for name, values in (("ADD", adds), ("DEL", dels)):
        print(f"{label:14} {name}: n={len(values)} p50={pct(values, 50):.1f} ms p99={pct(values, 99):.1f} ms"
              f" max={max(values):.1f} ms (target p99 < 30 ms: {'met' if pct(values, 99) < 30 else 'MISSED'})")
PY
