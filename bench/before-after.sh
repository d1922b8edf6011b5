#!/usr/bin/env bash
# This tree against an earlier commit of sriovd, side by side in one run: GET /pfs throughput and durable
# allocate+release cycles, each measured on both daemons in turn (A B A B ...) so drift of the machine hits both.
# Usage: bench/before-after.sh REV [seconds per wrk run, default 10] [rounds, default 3]
# Prints one line per measure: the medians of REV and of this tree, and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: bench/before-after.sh REV [seconds] [rounds]}
D=${2:-10}
ROUNDS=${3:-3}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
W=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

NOW=$(scripts/build-release.sh)
# The earlier tree is kept in .build-before-REV (ignored by git) and reused by later runs.
OLD_TREE=".build-before-$(git rev-parse --short "$REV")"
[ -d "$OLD_TREE" ] || git worktree add -q --detach "$OLD_TREE" "$REV"
BEFORE=$(cd "$OLD_TREE" && scripts/build-release.sh 2>/dev/null)

start() { # binary name -> prints the URL
    "$1" serve --simulate "$W/$2-host" --db "$W/$2.db" --listen 127.0.0.1:0 --log-level error >"$W/$2.out" &
    PIDS+=("$!")
    until grep -q listening "$W/$2.out" 2>/dev/null; do sleep 0.01; done
    local url
    url=$(grep -o 'http://[0-9.:]*' "$W/$2.out")
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do sleep 0.01; done
    curl -sf -X POST "$url/pfs/0000:5e:00.0/vfs" -H 'Content-Type: application/json' -d '{"count":128}' >/dev/null
    echo "$url"
}
rate() { # url connections [script] -> requests/s
    local t=$(( $2 < 2 ? 1 : 2 ))
    wrk -t"$t" -c"$2" -d"${D}s" ${3:+-s "$3"} "$1" | awk '/Requests\/sec/ {print $2}'
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

A=$(start "$BEFORE" before)
B=$(start "$NOW" now)
echo "before: $REV ($(git rev-parse --short "$REV")); now: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), ${D} s per run, ${ROUNDS} rounds, medians"
printf '%-44s %12s %12s %7s\n' measure before now ratio
measure() { # label connections path [script] [divisor]
    local before=() now=()
    for _ in $(seq "$ROUNDS"); do
        before+=("$(rate "$A$3" "$2" "${4:-}")")
        now+=("$(rate "$B$3" "$2" "${4:-}")")
    done
    local mb mn
    mb=$(printf '%s\n' "${before[@]}" | median | awk -v d="${5:-1}" '{printf "%.0f", $1/d}')
    mn=$(printf '%s\n' "${now[@]}" | median | awk -v d="${5:-1}" '{printf "%.0f", $1/d}')
    printf '%-44s %12s %12s %6.3fx\n' "$1" "$mb" "$mn" "$(echo "$mn / $mb" | bc -l)"
}
measure "GET /pfs req/s, 1 connection" 1 /pfs
measure "GET /pfs req/s, 64 connections" 64 /pfs
measure "allocate+release cycles/s, 1 client" 1 / bench/alloc-release.lua 2
measure "allocate+release cycles/s, 64 clients" 64 / bench/alloc-release.lua 2
