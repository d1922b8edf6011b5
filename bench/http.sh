#!/usr/bin/env bash
# GET /pfs throughput on the simulated host with wrk at 1, 64 and 256 connections: requests per second,
# p50 and p99 latency, and the server's idle and peak RSS.
# Usage: bench/http.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
BIN=$(scripts/build-release.sh)
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$BIN" serve --simulate "$DIR/host" --db "$DIR/sriovd.db" --listen 127.0.0.1:0 --log-level error >"$DIR/out" &
PID=$!
for _ in $(seq 50); do grep -q listening "$DIR/out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep -o 'http://[0-9.:]*' "$DIR/out")
curl -sf "$ADDR/pfs" >/dev/null
sleep 1
IDLE=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
BYTES=$(curl -s "$ADDR/pfs" | wc -c)
echo "sriovd GET /pfs ($BYTES-byte body), $DURATION s per run, $(nproc) cores, wrk on the same machine"
printf '%-12s %12s %10s %10s\n' connections req/s p50 p99
for C in 1 64 256; do
    T=$(( C < 2 ? 1 : 2 ))
    OUT=$(wrk -t"$T" -c"$C" -d"${DURATION}s" --latency "$ADDR/pfs")
    RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
    P50=$(echo "$OUT" | awk '$1=="50%" {print $2}')
    P99=$(echo "$OUT" | awk '$1=="99%" {print $2}')
    ERR=$(echo "$OUT" | grep -E 'Non-2xx|Socket errors' || true)
    printf '%-12s %12s %10s %10s %s\n' "$C" "$RPS" "$P50" "$P99" "$ERR"
done
PEAK=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
echo "RSS: idle $((IDLE / 1024)) MiB, peak $((PEAK / 1024)) MiB"
