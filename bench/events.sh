#!/usr/bin/env bash
# GET /events under load (issue 13 §3): a release daemon on a simulated host, then bench/events.py, which prints
# delivery latency, GET /pfs throughput beside the same load without subscribers, and RSS per subscriber.
# Usage: bench/events.sh [seconds per run, default 10] [subscribers, default 1000] [mutations/s, default 500]
set -euo pipefail
cd "$(dirname "$0")/.."
D=${1:-10}
N=${2:-1000}
RATE=${3:-500}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
BIN=$(scripts/build-release.sh)
W=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$W"' EXIT
ulimit -n "$(ulimit -Hn)"
# Every client here comes from 127.0.0.1: one address, so the per-client connection limit is raised for it.
"$BIN" serve --simulate "$W/host" --db "$W/sriovd.db" --listen 127.0.0.1:0 --log-level error \
    --client-connections 4096 --client-requests 4096 >"$W/out" &
PID=$!
until grep -q listening "$W/out" 2>/dev/null; do sleep 0.01; done
URL=$(grep -o 'http://[0-9.:]*' "$W/out")
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; do sleep 0.01; done
curl -sf -X POST "$URL/pfs/0000:5e:00.0/vfs" -H 'Content-Type: application/json' -d '{"count":128}' >/dev/null
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/events.py "$URL" "$PID" --subscribers "$N" --rate "$RATE" --seconds "$D"
