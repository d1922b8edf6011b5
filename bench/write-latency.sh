#!/usr/bin/env bash
# Tail latency of durable allocate+release (issue 20): an earlier commit of sriovd and this tree side by side in one
# run, beside raw SQLite with the same SQL on the same disk, each measured in turn (A B raw, A B raw, ...) so drift
# of a shared machine hits all three.
# Usage: bench/write-latency.sh REV [seconds per run, default 10] [rounds, default 3]
# Prints per round and client count: cycles/s, request p50/p99/p99.9 (wrk), then medians; raw SQLite's cycle rate
# and one transaction's p50/p99; then, per daemon, where a change spends its time (GET /metrics'
# sriovd_phase_duration_seconds over the 64-client runs: PF lock wait, plan, hardware, store queue, body, commit =
# WAL append + fsync, checkpoint, commit wait = submission to resumption). REV must have that histogram for its
# phases to print. BEFORE_BIN=PATH uses a release binary already built from REV instead of building it.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: bench/write-latency.sh REV [seconds] [rounds]}
D=${2:-10}
ROUNDS=${3:-3}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
W=$(mktemp -d)
cleanup() {
    # start() runs in a command substitution's subshell: it leaves each daemon's pid in a file.
    for p in "$W"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

NOW=$(scripts/build-release.sh)
if [ -n "${BEFORE_BIN:-}" ]; then
    BEFORE=$BEFORE_BIN
else
    OLD_TREE=".build-before-$(git rev-parse --short "$REV")"
    [ -d "$OLD_TREE" ] || git worktree add -q --detach "$OLD_TREE" "$REV"
    BEFORE=$(cd "$OLD_TREE" && scripts/build-release.sh 2>/dev/null)
fi

start() { # binary name -> prints the URL
    "$1" serve --simulate "$W/$2-host" --db "$W/$2.db" --listen 127.0.0.1:0 --log-level error >"$W/$2.out" 2>&1 &
    echo "$!" >"$W/$2.pid"
    until grep -q listening "$W/$2.out" 2>/dev/null; do sleep 0.01; done
    local url
    url=$(grep -o 'http://[0-9.:]*' "$W/$2.out")
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do sleep 0.01; done
    curl -sf -X POST "$url/pfs/0000:5e:00.0/vfs" -H 'Content-Type: application/json' -d '{"count":128}' >/dev/null
    echo "$url"
}
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.2f", v/1000; else if (v ~ /ms$/) printf "%.2f", v+0; else if (v ~ /s$/) printf "%.2f", v*1000; else print v }'; }
release_all() { # url: wrk stops mid-cycle, leaving up to one allocation per connection held; free them.
    curl -s "$1/allocations?state=active" | python3 -c 'import json,sys; [print(a["id"]) for a in json.load(sys.stdin)["items"]]' |
        while read -r id; do curl -s -o /dev/null -X DELETE "$1/allocations/$id"; done
}
cycles() { # name url connections -> "cycles/s p50 p99 max errors"
    local t=$(( $3 < 2 ? 1 : 2 )) out
    release_all "$2"
    curl -s "$2/metrics" >"$W/$1-$3-m0"
    out=$(wrk -t"$t" -c"$3" -d"${D}s" --latency -s bench/alloc-release.lua "$2")
    curl -s "$2/metrics" >"$W/$1-$3-m1"
    python3 bench/phases.py "$W/$1-$3-m0" "$W/$1-$3-m1" "$1" >>"$W/$1-$3-phases" || true
    printf '%s %s %s %s %s\n' "$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2 / 2}')" \
        "$(ms "$(echo "$out" | awk '$1=="50%" {print $2}')")" "$(ms "$(echo "$out" | awk '$1=="99%" {print $2}')")" \
        "$(echo "$out" | awk '/Latency/ && /Stdev/ {next} /^ *Latency / {print $4}' | head -1)" \
        "$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}')"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

A=$(start "$BEFORE" before)
B=$(start "$NOW" now)
# Raw SQLite works on a consistent copy of this tree's database (schema, inventory, 128 VFs).
python3 -c "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d)" \
    "$W/now.db" "$W/raw0.db"
echo "before: $REV ($(git rev-parse --short "$REV")); now: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), ${D} s per run, ${ROUNDS} rounds"
echo "(cycles/s: allocate+release pairs; p50/p99 ms: per request, wrk; max: wrk's slowest request)"
printf '%-5s %-7s | %9s %7s %7s %8s | %9s %7s %7s %8s | %9s %7s %7s\n' round clients \
    before/s p50 p99 max now/s p50 p99 max raw/s tx-p50 tx-p99
for r in $(seq "$ROUNDS"); do
    for C in 1 64; do
        read -r AR AP50 AP99 AMAX AE < <(cycles before "$A" "$C")
        read -r BR BP50 BP99 BMAX BE < <(cycles now "$B" "$C")
        cp "$W/raw0.db" "$W/raw.db"
        rm -f "$W/raw.db-wal" "$W/raw.db-shm"
        read -r RR _ _ RT50 RT99 < <(python3 bench/sqlite-raw.py "$W/raw.db" "$D")
        printf '%-5s %-7s | %9s %7s %7s %8s | %9s %7s %7s %8s | %9s %7s %7s %s\n' "$r" "$C" \
            "$AR" "$AP50" "$AP99" "$(ms "$AMAX")" "$BR" "$BP50" "$BP99" "$(ms "$BMAX")" "$RR" "$RT50" "$RT99" \
            "$([ "$AE$BE" = 00 ] || echo "errors: before $AE, now $BE")" | tee -a "$W/rows"
    done
done
echo
echo "medians of ${ROUNDS} rounds"
for C in 1 64; do
    col() { awk -v c="$C" -v k="$1" '$2 == c {print $k}' "$W/rows" | median; }
    printf '  %2s clients: before %6.0f cycles/s p50 %6.2f p99 %6.2f | now %6.0f cycles/s p50 %6.2f p99 %6.2f (p99/p50 %.1f) | raw %6.0f tx p99 %5.2f | now/before %.2fx, now p99 / raw tx p99 %.2fx\n' \
        "$C" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 9)" "$(col 10)" "$(col 11)" "$(echo "$(col 11) / $(col 10)" | bc -l)" \
        "$(col 14)" "$(col 16)" "$(echo "$(col 9) / $(col 4)" | bc -l)" "$(echo "$(col 11) / $(col 16)" | bc -l)"
done
echo
echo "phases over the ${ROUNDS} runs at 64 clients and at 1 client (ms; bucket upper bounds, within ~12 %)"
printf '%-10s %-14s %9s %9s %9s %9s %9s %9s\n' daemon phase count mean p50 p99 p99.9 max
for C in 64 1; do
    echo "-- $C client(s), each run's figures in turn"
    for who in before now; do [ -f "$W/$who-$C-phases" ] && cat "$W/$who-$C-phases"; done
done
