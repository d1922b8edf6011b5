#!/usr/bin/env bash
# sriovd against a Hummingbird 2 baseline, side by side in one run (issue 7 §5, issue 3 §5, issue 2 §9).
# Usage: bench/compare.sh [seconds per wrk run, default 10]
# Prints: GET /pfs req/s, p50, p99 at 1/64/256 connections for both, with ratios; durable allocate+release
# cycles/s at 1 and 64 clients; the raw SQLite rate of the same transactions on the same disk; GET /pfs while
# allocations run; startup-to-ready; idle and loaded RSS; reconciliation at 1,024 and 4,096 VFs (bench/reconcile.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-10}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
BIN=$(scripts/build-release.sh)
(cd Benchmarks && swift build -c release --scratch-path .build --product Baseline >/dev/null)
BASE=Benchmarks/.build/release/Baseline
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0; else if (v ~ /s$/) printf "%.3f", v*1000; else print v }'; }
wrkrun() { # url connections [script] -> "rps p50ms p99ms errors"
    local t=$(( $2 < 2 ? 1 : 2 )) out
    out=$(wrk -t"$t" -c"$2" -d"${D}s" --latency ${3:+-s "$3"} "$1")
    printf '%s %s %s %s\n' "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(ms "$(echo "$out" | awk '$1=="50%" {print $2}')")" "$(ms "$(echo "$out" | awk '$1=="99%" {print $2}')")" \
        "$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}')"
}

# sriovd: spawn to first 200 on /readyz.
T0=$(date +%s.%N)
"$BIN" serve --simulate "$W/host" --db "$W/sriovd.db" --listen 127.0.0.1:0 --log-level error >"$W/out" &
SPID=$!; PIDS+=("$SPID")
until grep -q listening "$W/out" 2>/dev/null; do sleep 0.002; done
S=$(grep -o 'http://[0-9.:]*' "$W/out")
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$S/readyz")" = 200 ]; do sleep 0.002; done
READY_MS=$(echo "$(date +%s.%N) - $T0" | bc -l | awk '{printf "%.0f", $1*1000}')
curl -sf "$S/pfs" >"$W/pfs.json"
sleep 1
S_IDLE=$(rss "$SPID")

T0=$(date +%s.%N)
"$BASE" --body "$W/pfs.json" --port 0 >"$W/bout" &
BPID=$!; PIDS+=("$BPID")
until grep -q listening "$W/bout" 2>/dev/null; do sleep 0.002; done
B=$(grep -o 'http://[0-9.:]*' "$W/bout")
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$B/readyz")" = 200 ]; do sleep 0.002; done
B_READY_MS=$(echo "$(date +%s.%N) - $T0" | bc -l | awk '{printf "%.0f", $1*1000}')
cmp -s "$W/pfs.json" <(curl -s "$B/pfs") || { echo "baseline body differs" >&2; exit 1; }
sleep 1
B_IDLE=$(rss "$BPID")

echo "sriovd vs Hummingbird 2 baseline: GET /pfs ($(wc -c <"$W/pfs.json")-byte body), ${D} s per run"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-6s | %10s %8s %8s | %10s %8s %8s | %7s %9s\n' conns "sriovd/s" p50ms p99ms "baseline/s" p50ms p99ms ratio p99ratio
for C in 1 64 256; do
    read -r SR SP50 SP99 SE < <(wrkrun "$S/pfs" "$C")
    read -r BR BP50 BP99 BE < <(wrkrun "$B/pfs" "$C")
    printf '%-6s | %10s %8s %8s | %10s %8s %8s | %6.2fx %8.2fx %s\n' "$C" "$SR" "$SP50" "$SP99" "$BR" "$BP50" "$BP99" \
        "$(echo "$SR / $BR" | bc -l)" "$(echo "$SP99 / $BP99" | bc -l)" \
        "$([ "$SE$BE" = 00 ] || echo "errors: sriovd $SE, baseline $BE")"
done
S_GET_HWM=$(hwm "$SPID"); B_HWM=$(hwm "$BPID")

curl -sf -X POST "$S/pfs/0000:5e:00.0/vfs" -H 'Content-Type: application/json' -d '{"count":128}' >/dev/null
echo
echo "durable allocate+release (POST /allocations then DELETE, WAL + synchronous=FULL, 128 VFs on 0000:5e:00.0)"
for C in 1 64; do
    read -r R P50 P99 E < <(wrkrun "$S" "$C" bench/alloc-release.lua)
    printf '  %3s clients: %8.0f cycles/s (%s req/s), p50 %s ms, p99 %s ms, non-2xx %s\n' "$C" \
        "$(echo "$R / 2" | bc -l)" "$R" "$P50" "$P99" "$E"
done
S_LOADED=$(rss "$SPID")
echo "GET /pfs while allocations run (64 allocate+release connections + 64 GET connections):"
wrk -t1 -c64 -d"${D}s" -s bench/alloc-release.lua "$S" >"$W/alloc-bg" &
WPID=$!
read -r R P50 P99 E < <(wrkrun "$S/pfs" 64)
wait $WPID
printf '  GET /pfs %s req/s, p50 %s ms, p99 %s ms; allocate+release alongside %.0f cycles/s\n' "$R" "$P50" "$P99" \
    "$(awk '/Requests\/sec/ {print $2/2}' "$W/alloc-bg")"

kill "$SPID"; wait "$SPID" 2>/dev/null || true
cp "$W/sriovd.db" "$W/raw.db"
[ -f "$W/sriovd.db-wal" ] && cp "$W/sriovd.db-wal" "$W/raw.db-wal"
read -r RAW RP50 RP99 _ < <(python3 bench/sqlite-raw.py "$W/raw.db" "$D")
echo "raw SQLite, same SQL and disk, one client (python sqlite3 $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')):"
printf '  %s cycles/s = %s transactions/s, cycle p50 %s ms, p99 %s ms\n' "$RAW" "$((RAW * 2))" "$RP50" "$RP99"
echo
echo "startup to ready (spawn to first 200 on /readyz): sriovd ${READY_MS} ms, baseline ${B_READY_MS} ms"
echo "RSS: sriovd idle ${S_IDLE} MiB, peak under GET load ${S_GET_HWM} MiB, after allocations ${S_LOADED} MiB;" \
     "baseline idle ${B_IDLE} MiB, peak ${B_HWM} MiB; idle ratio $(echo "$S_IDLE / $B_IDLE" | bc -l | cut -c1-4)"
echo
echo "reconciliation at 1,024 and 4,096 VFs (bench/reconcile.sh, ${RECONCILE_ALLOCATIONS:-32} allocations with settings per host):"
bench/reconcile.sh "${RECONCILE_ALLOCATIONS:-32}" | grep -v '^Build'
