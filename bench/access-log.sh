#!/usr/bin/env bash
# What the access log costs (issue 12 §6): GET /pfs req/s of the default daemon (access log on, level info) beside
# the same daemon with --no-access-log and beside the Hummingbird 2 baseline (Benchmarks/, byte-identical /pfs),
# at 64 connections and at 1, in one run. The servers run side by side and the wrk runs take turns (each round
# starts one server further on), so that a change in the machine's load falls on all alike; each figure is the
# median of its rounds. The default daemon runs twice: with standard error a pipe read by another process, as
# journald or a container runtime reads it (the script checks it got one line per request answered), and with
# standard error on /dev/null.
# Usage: bench/access-log.sh [seconds per wrk run, default 10] [rounds, default 3]
# Targets: default >= 0.85x no-log, and >= 1.5x the baseline at 64 connections.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-10}
ROUNDS=${2:-3}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
BIN=$(scripts/build-release.sh)
(cd Benchmarks && swift build -c release --scratch-path .build --product Baseline >/dev/null)
BASE=Benchmarks/.build/release/Baseline
W=$(mktemp -d)
trap 'for f in "$W"/*.pid; do kill "$(cat "$f")" 2>/dev/null || true; done; rm -rf "$W"' EXIT

# start NAME COMMAND...: runs a server whose stdout goes to $W/NAME.out and pid to $W/NAME.pid, waits for its
# address and prints it.
start() {
    local name=$1
    shift
    "$@" >"$W/$name.out" &
    echo "$!" >"$W/$name.pid"
    for _ in $(seq 200); do grep -q listening "$W/$name.out" 2>/dev/null && break; sleep 0.05; done
    grep -o 'http://[0-9.:]*' "$W/$name.out" | head -1
}

# The default daemon logs to a pipe; awk counts the request lines it receives and the lines the daemon reported
# dropped, once the daemon closes its end.
DEFAULT=$(start default bash -c "exec '$BIN' serve --simulate '$W/host-a' --db '$W/a.db' --listen 127.0.0.1:0 \
    2> >(awk '/ msg=request /{n++} /access_log.dropped=/{sub(/.*access_log.dropped=/, \"\"); d+=\$0} \
        END {print n+0, d+0}' >'$W/default.lines')")
NULL=$(start null bash -c "exec '$BIN' serve --simulate '$W/host-c' --db '$W/c.db' --listen 127.0.0.1:0 2>/dev/null")
NOLOG=$(start nolog bash -c "exec '$BIN' serve --simulate '$W/host-b' --db '$W/b.db' --listen 127.0.0.1:0 \
    --no-access-log 2>'$W/nolog.err'")
for url in "$DEFAULT" "$NULL" "$NOLOG"; do
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do sleep 0.01; done
done
curl -sf "$DEFAULT/pfs" >"$W/pfs.json"
BASELINE=$(start baseline bash -c "exec '$BASE' --body '$W/pfs.json' --port 0 2>'$W/baseline.err'")
cmp -s "$W/pfs.json" <(curl -s "$BASELINE/pfs") || { echo "baseline body differs" >&2; exit 1; }
cmp -s "$W/pfs.json" <(curl -s "$NOLOG/pfs") || { echo "--no-access-log body differs" >&2; exit 1; }

# wrkrun URL CONNECTIONS -> "req/s requests errors"
wrkrun() {
    local threads=$(($2 < 2 ? 1 : 2)) out
    out=$(wrk -t"$threads" -c"$2" -d"${D}s" "$1/pfs")
    printf '%s %s %s\n' "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(echo "$out" | awk '/requests in/ {print $1}')" \
        "$(echo "$out" | awk '/Non-2xx/ {n+=$NF} /Socket errors/ {n+=1} END {print n+0}')"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

NAMES=(default null nolog baseline)
URLS=("$DEFAULT" "$NULL" "$NOLOG" "$BASELINE")
N=${#NAMES[@]}
echo "GET /pfs ($(wc -c <"$W/pfs.json")-byte body): default sriovd (access log on) vs --no-access-log vs Hummingbird 2"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "${D} s per wrk run, ${ROUNDS} rounds taking turns, medians"
ERRORS=0
DEFAULT_REQUESTS=0
for C in 64 1; do
    for round in $(seq 0 $((ROUNDS - 1))); do
        for k in $(seq 0 $((N - 1))); do
            i=$(((round + k) % N))
            read -r RATE COUNT ERR < <(wrkrun "${URLS[$i]}" "$C")
            echo "$RATE" >>"$W/${NAMES[$i]}.$C"
            ERRORS=$((ERRORS + ERR))
            [ "${NAMES[$i]}" = default ] && DEFAULT_REQUESTS=$((DEFAULT_REQUESTS + COUNT))
            echo "  round $((round + 1)), $C conns: ${NAMES[$i]} $RATE req/s" >>"$W/rounds"
        done
    done
done
echo "default: log to a pipe; null: the default daemon with stderr on /dev/null; no-log: --no-access-log"
printf '%-6s | %10s %10s %10s %10s | %14s %11s %16s\n' conns "default/s" "null/s" "no-log/s" "baseline/s" \
    "default/no-log" "null/no-log" "default/baseline"
for C in 64 1; do
    DR=$(median <"$W/default.$C")
    UR=$(median <"$W/null.$C")
    NR=$(median <"$W/nolog.$C")
    BR=$(median <"$W/baseline.$C")
    printf '%-6s | %10.0f %10.0f %10.0f %10.0f | %13.2fx %10.2fx %15.2fx\n' "$C" "$DR" "$UR" "$NR" "$BR" \
        "$(echo "$DR / $NR" | bc -l)" "$(echo "$UR / $NR" | bc -l)" "$(echo "$DR / $BR" | bc -l)"
done
echo "every run:"
cat "$W/rounds"
kill "$(cat "$W/default.pid")"
for _ in $(seq 100); do [ -s "$W/default.lines" ] && break; sleep 0.05; done
read -r LINES DROPPED <"$W/default.lines" || true
echo "default daemon: ${LINES:-?} request lines logged and ${DROPPED:-?} reported dropped, for ${DEFAULT_REQUESTS}" \
    "requests wrk counted as answered (plus its own probes); non-2xx or socket errors in all runs: ${ERRORS}"
