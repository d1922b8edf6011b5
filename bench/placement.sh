#!/usr/bin/env bash
# Allocation through placement, anti-affinity and quotas (issue 17) on a simulated host with 16 PFs and 4,096 VFs,
# and durable mutations/s of this tree against an earlier commit in the same run.
# Usage: bench/placement.sh [REV to compare with, default main] [seconds per wrk run, default 10] [rounds, default 3]
# BEFORE_BIN=PATH uses an already built release sriovd of REV instead of building it.
# Prints: allocate+release through a selector (spread, prefer_numa_node, anti_affinity) under a quota, p50/p99 at 64
# clients (target p99 < 5 ms); the same loop by PF address on the same host; and plain allocate+release cycles/s at
# 64 clients on the default host, REV and this tree alternating (A B A B ...), medians and their ratio (target >= 0.9).
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:-main}
D=${2:-10}
ROUNDS=${3:-3}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
W=$(mktemp -d)
cleanup() {
    # start() runs in a command substitution (a subshell): each daemon leaves its pid in a file.
    for f in "$W"/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    git worktree remove --force "$W/before" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

NOW=$(scripts/build-release.sh)
if [ -n "${BEFORE_BIN:-}" ]; then
    BEFORE=$BEFORE_BIN
else
    git worktree add -q --detach "$W/before" "$REV"
    BEFORE=$(cd "$W/before" && scripts/build-release.sh 2>/dev/null)
fi

start() { # binary name [host dir] -> prints the URL
    "$1" serve --simulate "${3:-$W/$2-host}" --db "$W/$2.db" --listen 127.0.0.1:0 --log-level error >"$W/$2.out" &
    echo "$!" >"$W/$2.pid"
    until grep -q listening "$W/$2.out" 2>/dev/null; do sleep 0.01; done
    local url
    url=$(grep -o 'http://[0-9.:]*' "$W/$2.out")
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do sleep 0.01; done
    echo "$url"
}
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else if (v ~ /s$/) printf "%.3f", v*1000; else print v }'; }
wrkrun() { # url connections script -> "req/s p50ms p99ms non2xx"
    local out
    out=$(wrk -t"$(( $2 < 2 ? 1 : 2 ))" -c"$2" -d"${D}s" --latency -s "$3" "$1")
    printf '%s %s %s %s\n' "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(ms "$(echo "$out" | awk '$1=="50%" {print $2}')")" "$(ms "$(echo "$out" | awk '$1=="99%" {print $2}')")" \
        "$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}')"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), ${D} s per run; now $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), before $REV ($(git rev-parse --short "$REV"))"

# 1. The large host: 16 PFs x 256 VFs, quotas, and 128 allocations holding bond labels b0..b63 twice each.
"$NOW" simulate create "$W/large" --pfs 16 --vfs-per-pf 256 >/dev/null
L=$(start "$NOW" large "$W/large")
curl -sf -H "Content-Type: application/json" -X PUT "$L/quotas/bench%3A" -d '{"max_vfs": 4096, "per_numa_node": {"0": 2048, "1": 2048}}' >/dev/null
curl -sf -H "Content-Type: application/json" -X PUT "$L/quotas/setup%3A" -d '{"max_vfs": 512}' >/dev/null
for p in other team-a team-b vm; do curl -sf -H "Content-Type: application/json" -X PUT "$L/quotas/$p%3A" -d '{"max_vfs": 64}' >/dev/null; done
for i in $(seq 0 127); do
    curl -sf -H "Content-Type: application/json" -o /dev/null -X POST "$L/allocations" -d "{\"owner\":\"setup:$i\",\"labels\":{\"bond\":\"b$((i % 64))\"},\"selector\":{\"driver\":\"ice\",\"placement\":\"spread\",\"anti_affinity\":{\"label\":\"bond\"}}}"
done
HELD=$(curl -s "$L/capacity" | python3 -c 'import json,sys; h=json.load(sys.stdin)["host"]; print(h["enabled"], h["held"])')
echo "host: 16 PFs, enabled and held VFs: $HELD; quotas: $(curl -s "$L/quotas" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')"
FIRST=$(curl -s "$L/pfs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["address"])')
sed "s/0000:5e:00.0/$FIRST/" bench/alloc-release.lua >"$W/by-pf.lua"
printf '%-62s %10s %9s %8s %8s %7s\n' "allocate+release" "cycles/s" "req/s" p50ms p99ms non2xx
for C in 1 64; do
    read -r R P50 P99 E < <(wrkrun "$L" "$C" bench/placement.lua)
    printf '%-62s %10.0f %9s %8s %8s %7s\n' "$C clients: selector, spread, prefer_numa_node, anti_affinity, quota" \
        "$(echo "$R / 2" | bc -l)" "$R" "$P50" "$P99" "$E"
    read -r R P50 P99 E < <(wrkrun "$L" "$C" "$W/by-pf.lua")
    printf '%-62s %10.0f %9s %8s %8s %7s\n' "$C clients: by PF address (the bench: quota applies)" \
        "$(echo "$R / 2" | bc -l)" "$R" "$P50" "$P99" "$E"
done
echo "quota bench: held at the end: $(curl -s "$L/quotas" | python3 -c 'import json,sys; print([q for q in json.load(sys.stdin)["items"] if q["owner_prefix"]=="bench:"][0]["used"])') (cycles cut off when wrk stopped, at most 64)"

# 2. Durable mutations/s: REV and this tree, the same plain loop on the default host, alternating.
A=$(start "$BEFORE" before)
B=$(start "$NOW" now)
for u in "$A" "$B"; do curl -sf -H "Content-Type: application/json" -X POST "$u/pfs/0000:5e:00.0/vfs" -d '{"count":128}' >/dev/null; done
before=(); now=()
for _ in $(seq "$ROUNDS"); do
    before+=("$(wrkrun "$A" 64 bench/alloc-release.lua | awk '{print $1 / 2}')")
    now+=("$(wrkrun "$B" 64 bench/alloc-release.lua | awk '{print $1 / 2}')")
done
MB=$(printf '%s\n' "${before[@]}" | median)
MN=$(printf '%s\n' "${now[@]}" | median)
printf 'durable allocate+release cycles/s, 64 clients, default host, median of %s: before %.0f, now %.0f, ratio %.3fx\n' \
    "$ROUNDS" "$MB" "$MN" "$(echo "$MN / $MB" | bc -l)"
