#!/usr/bin/env bash
# Reconciliation cost on simulated hosts with 1,024 VFs (8 PFs) and 4,096 VFs (16 PFs): with nothing to do,
# and after a simulated reboot (every VF recreated, allocations' settings re-applied). Prints the reconcile
# duration the daemon reports, startup-to-ready time, and peak RSS.
# Usage: bench/reconcile.sh [allocations with settings per host, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
ALLOCATIONS=${1:-64}
BIN=$(scripts/build-release.sh)
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT

start() {  # $1 host dir; prints "ready_ms"
    local t0 t1
    t0=$(date +%s%N)
    "$BIN" serve --simulate "$1" --listen 127.0.0.1:0 --log-level error >"$WORK/out" &
    PID=$!
    until grep -q listening "$WORK/out" 2>/dev/null; do sleep 0.005; done
    ADDR=$(grep -o 'http://[0-9.:]*' "$WORK/out")
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/readyz")" = 200 ]; do sleep 0.005; done
    t1=$(date +%s%N)
    READY_MS=$(( (t1 - t0) / 1000000 ))
}
stop() { kill $PID; wait $PID 2>/dev/null || true; PID=; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

printf '%-22s %-14s %12s %12s %10s %8s %7s\n' host run reconcile_ms ready_ms peak_MiB actions failed
for spec in "8 128" "16 256"; do
    set -- $spec
    HOST="$WORK/host-$1"
    "$BIN" simulate create "$HOST" --pfs "$1" --vfs-per-pf "$2"
    start "$HOST"   # first start: records inventory, adopts the VF counts
    FIRST=$(curl -s "$ADDR/pfs" | field '["items"][0]["address"]')
    for i in $(seq "$ALLOCATIONS"); do
        curl -s -o /dev/null -X POST "$ADDR/allocations" -H 'Content-Type: application/json' -d "{\"owner\":\"bench:$i\",\"selector\":{\"driver\":\"ice\"},\"config\":{\"vlan\":$((i % 4000 + 1)),\"trust\":true}}"
    done
    stop
    for run in nothing-to-do after-reboot; do
        [ "$run" = after-reboot ] && "$BIN" simulate reboot "$HOST"
        start "$HOST"
        R=$(curl -s "$ADDR/reconcile")
        MS=$(echo "$R" | field '["duration_ms"]')
        N=$(echo "$R" | field '["actions"].__len__()')
        FAILED=$(echo "$R" | field '["counts"].get("failed", 0)')
        PEAK=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$PID/status)
        printf '%-22s %-14s %12.1f %12s %10s %8s %7s\n' "$1 PFs x $2 = $(( $1 * $2 )) VFs" "$run" "$MS" "$READY_MS" "$PEAK" "$N" "$FAILED"
        stop
    done
done
