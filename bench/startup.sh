#!/usr/bin/env bash
# Startup to ready with nothing to do on simulated hosts of 1,024 VFs (8 PFs x 128) and 4,096 VFs (16 PFs x 256),
# an earlier commit and this tree in turn (A B A B ...) on copies of the same host and database, in one run.
# Prints spawn to first 200 on /readyz, and the phases the daemon logs with its `ready` line (open: verify, migrate
# and open the database; scan: read sysfs; listen; reconcile; settle: interrupted operations), medians of the rounds.
# Usage: bench/startup.sh REV [rounds, default 5] [allocations with settings per host, default 32]
# BEFORE_BIN=PATH uses a release binary already built from REV instead of building it.
set -uo pipefail  # not -e: a daemon that already exited must not end the run
cd "$(dirname "$0")/.."
REV=${1:?usage: bench/startup.sh REV [rounds] [allocations]}
ROUNDS=${2:-5}
ALLOCATIONS=${3:-32}
NOW=$(scripts/build-release.sh)
if [ -n "${BEFORE_BIN:-}" ]; then
    BEFORE=$BEFORE_BIN
else
    OLD_TREE=".build-before-$(git rev-parse --short "$REV")"
    [ -d "$OLD_TREE" ] || git worktree add -q --detach "$OLD_TREE" "$REV"
    BEFORE=$(cd "$OLD_TREE" && scripts/build-release.sh 2>/dev/null)
fi
W=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$W"' EXIT

start() { # binary host-dir -> sets READY_MS, ADDR; the daemon's log in $W/out
    local t0 t1
    rm -f "$W/out"  # else the wait below can read the last start's address before the new daemon truncates it
    t0=$(date +%s%N)
    "$1" serve --simulate "$2" --listen 127.0.0.1:0 --log-level info --no-access-log >"$W/out" 2>&1 &
    PID=$!
    # The address line, not the earlier "HTTP server listening" log line: reading ADDR before it is written left it empty.
    until grep -q 'listening on http://' "$W/out" 2>/dev/null; do sleep 0.002; done
    ADDR=$(grep -o 'http://[0-9.:]*' "$W/out" | head -1)
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/readyz")" = 200 ]; do sleep 0.002; done
    t1=$(date +%s%N)
    READY_MS=$(( (t1 - t0) / 1000000 ))
}
stop() { kill $PID; wait $PID 2>/dev/null || true; PID=; }
phase() { grep 'msg=ready' "$W/out" | grep -o "$1_ms=[0-9.]*" | cut -d= -f2 | head -1; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

echo "before: $REV ($(git rev-parse --short "$REV")); now: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), ${ROUNDS} rounds, medians (ms)"
printf '%-16s %-7s %9s %7s %7s %7s %10s %7s\n' host daemon ready open scan listen reconcile settle
for spec in "8 128" "16 256"; do
    set -- $spec
    HOST="$W/host-$1"
    "$NOW" simulate create "$HOST" --pfs "$1" --vfs-per-pf "$2" >/dev/null
    start "$NOW" "$HOST"   # first start: records inventory, adopts the VF counts
    for i in $(seq "$ALLOCATIONS"); do
        curl -s -o /dev/null -X POST "$ADDR/allocations" -H 'Content-Type: application/json' \
            -d "{\"owner\":\"bench:$i\",\"selector\":{\"driver\":\"ice\"},\"config\":{\"vlan\":$((i % 4000 + 1)),\"trust\":true}}"
    done
    stop
    cp -a "$HOST" "$HOST-before"; cp -a "$HOST" "$HOST-now"
    for r in $(seq "$ROUNDS"); do
        for who in before now; do
            BIN=$BEFORE; [ "$who" = now ] && BIN=$NOW
            start "$BIN" "$HOST-$who"
            echo "$READY_MS $(phase open) $(phase scan) $(phase listen) $(phase reconcile) $(phase settle)" >>"$W/$1-$who"
            stop
        done
    done
    for who in before now; do
        med() { awk -v k="$1" '{print $k}' "$W/$1-$who" | median; }
        printf '%-16s %-7s' "$(( $1 * $2 )) VFs" "$who"
        for k in 1 2 3 4 5 6; do printf ' %9s' "$(awk -v k="$k" '{print $k}' "$W/$1-$who" | median)"; done
        echo
    done
done
