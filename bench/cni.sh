#!/usr/bin/env bash
# sriovd-cni ADD and DEL latency on the simulated host, IPAM excluded: the plugin run as a runtime runs it (a new
# process each time, CNI_* in the environment, the configuration on stdin) against sriovd on its Unix socket, moving
# a veth named as the simulated VF's netdev into a network namespace and back. Prints p50/p99 of each; the target
# is p99 < 30 ms. Then where the time goes, phase by phase, from the plugin's own timing (SRIOVD_CNI_TIMING=1):
# each sriovd request, namespace and rtnetlink step, and `process` (exec, runtime start-up and exit: the wall time
# outside the plugin's run), beside the floor of a process that does nothing (VERSION).
# Needs root (netns, veth). CONFIG=debug uses the debug build; N sets the number of cycles.
# BEFORE=REV also builds sriovd-cni and sriovd of that commit (in .build-before-REV) and measures both trees in
# turn, printing their figures side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
build() { # tree -> prints "sriovd sriovd-cni"
    if [ "${CONFIG:-release}" = release ]; then
        (cd "$1" && swift build -c release --product sriovd-cni --static-swift-stdlib >&2 &&
            echo "$(scripts/build-release.sh) $(swift build -c release --static-swift-stdlib --show-bin-path)/sriovd-cni")
    else
        (cd "$1" && swift build >&2 && echo "$(swift build --show-bin-path)/sriovd $(swift build --show-bin-path)/sriovd-cni")
    fi
}
trees=(now)
read -r now_sriovd now_cni < <(build .)
if [ -n "${BEFORE:-}" ]; then
    old=".build-before-$(git rev-parse --short "$BEFORE")"
    [ -d "$old" ] || git worktree add -q --detach "$old" "$BEFORE"
    read -r before_sriovd before_cni < <(build "$old")
    trees=(before now)
fi
work=$(mktemp -d)
ns=cnibench$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    ip link del ens785f0v3 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip link del ens785f0v3 2>/dev/null || true
ip link add ens785f0v3 type veth peer name pens785f0v3
args=()
for tree in "${trees[@]}"; do
    sriovd_var=${tree}_sriovd cni_var=${tree}_cni
    "${!sriovd_var}" serve --simulate "$work/$tree-sim" --unix "$work/$tree.sock" --listen none --log-level error \
        --no-access-log >/dev/null 2>"$work/$tree.err" &
    pids+=("$!")
    for _ in $(seq 200); do [ -S "$work/$tree.sock" ] && break; sleep 0.05; done
    args+=("$tree" "${!cni_var}" "$work/$tree.sock")
done
python3 - "/run/netns/$ns" "$N" "${args[@]}" <<'PY'
import json, statistics, subprocess, sys, time
netns, n = sys.argv[1], int(sys.argv[2])
trees = [(sys.argv[i], sys.argv[i + 1], sys.argv[i + 2]) for i in range(3, len(sys.argv), 3)]
def call(plugin, command, container, config):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": netns, "CNI_IFNAME": "net1",
           "CNI_PATH": "/usr/lib/cni", "SRIOVD_CNI_TIMING": "1"}
    start = time.perf_counter()
    done = subprocess.run([plugin], input=json.dumps(config).encode(), env=env, capture_output=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        sys.exit(f"{command} failed: {done.stdout.decode()} {done.stderr.decode()}")
    phases = {}
    for line in done.stderr.decode().splitlines():
        if "sriovd-cni: timing" in line:   # older trees print no timing line
            phases = {k: float(v) for k, v in (p.split("=") for p in line.split()[3:])}
    if "total" in phases:
        phases["process"] = elapsed - phases.pop("total")
    phases["wall"] = elapsed
    return phases
def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
# The floor: a process that reads its stdin and answers VERSION, nothing else.
floor = {}
for tree, plugin, socket in trees:
    floor[tree] = [call(plugin, "VERSION", "v", {"cniVersion": "1.1.0"})["wall"] for _ in range(n)]
print("process floor (VERSION):  " + "   ".join(
    f"{t}: p50={pct(floor[t], 50):.1f} ms p99={pct(floor[t], 99):.1f} ms" for t, _, _ in trees))
# The kernel's share, without the plugin: ip(8) moving the same veth into the namespace and back, beside ip(8)
# doing nothing of note (its own process start); the difference is the kernel's netns move.
def wall(command):
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000
moves, idle = [], []
ns_name = netns.rsplit("/", 1)[1]
for _ in range(n):
    moves.append(wall(["ip", "link", "set", "ens785f0v3", "netns", ns_name]))
    moves.append(wall(["ip", "-n", ns_name, "link", "set", "ens785f0v3", "netns", "1"]))
    idle.append(wall(["ip", "link", "show", "lo"]))
print(f"kernel floor: ip link set netns p50={pct(moves, 50):.1f} ms p99={pct(moves, 99):.1f} ms;"
      f" ip link show lo p50={pct(idle, 50):.1f} ms p99={pct(idle, 99):.1f} ms")
# Without VF settings the allocation is one durable commit; with them sriovd records an intent, writes each setting
# over (simulated) rtnetlink, reads it back and audits it, and the release restores every setting the same way.
for run, (label, extra) in enumerate((("move only", {}), ("with vlan+mac", {"vlan": 10, "mac": "02:00:00:00:be:01"}))):
    runs = {t: {"ADD": [], "DEL": []} for t, _, _ in trees}
    for i in range(n):
        for tree, plugin, socket in trees:   # the trees in turn, so the machine's drift hits both
            config = {"cniVersion": "1.1.0", "name": "bench", "type": "sriovd-cni", "socket": socket,
                      "deviceID": "0000:3b:02.3", "mtu": 1400, **extra}
            # A new container each cycle, as pods come and go (a reused name is an ADD after DEL: two requests).
            runs[tree]["ADD"].append(call(plugin, "ADD", f"bench{run}-{i}", config))
            runs[tree]["DEL"].append(call(plugin, "DEL", f"bench{run}-{i}", config))
    for command in ("ADD", "DEL"):
        print(f"\n{label} {command} (n={n}), ms          " + "".join(f"{t + ' p50':>12}{t + ' p99':>12}" for t, _, _ in trees))
        names = []
        for t, _, _ in trees:
            for sample in runs[t][command]:
                names += [k for k in sample if k not in names]
        names = [k for k in names if k not in ("wall", "process", "other")] + ["other", "process", "wall"]
        for name in names:
            row = ""
            for t, _, _ in trees:
                values = [s[name] for s in runs[t][command] if name in s]
                row += f"{pct(values, 50):12.2f}{pct(values, 99):12.2f}" if values else f"{'-':>12}{'-':>12}"
            print(f"  {name:32}{row}")
        for t, _, _ in trees:
            p99 = pct([s["wall"] for s in runs[t][command]], 99)
            print(f"  {t}: {command} p99 {p99:.1f} ms, target p99 < 30 ms: {'met' if p99 < 30 else 'MISSED'}")
PY
