#!/usr/bin/env bash
# Idle RSS of sriovd beside the floor of its stack: Benchmarks/RuntimeFloor, a program with the same runtime
# pieces (static Swift standard library, FoundationEssentials JSON, concurrency, libsqlite3 in WAL mode) linked
# the same way and doing nothing else. Prints both, with where each one's resident pages come from.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(scripts/build-release.sh)
(cd Benchmarks/RuntimeFloor && swift build -c release --static-swift-stdlib --scratch-path .build >&2)
FLOOR=Benchmarks/RuntimeFloor/.build/release/RuntimeFloor
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
breakdown() {  # pid -> the three largest mappings and the anonymous total, in MiB
    awk '/^[0-9a-f]+-/ {name=$6} /^Rss:/ {r[name == "" ? "[anonymous]" : name] += $2}
         END {for (n in r) printf "%.1f %s\n", r[n] / 1024, n}' "/proc/$1/smaps" |
        sort -rn | head -4 | awk '{n=split($2, p, "/"); printf "%s%s %s MiB", (NR > 1 ? ", " : ""), p[n], $1}'
}
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

"$BIN" serve --simulate "$W/host" --db "$W/sriovd.db" --listen 127.0.0.1:0 --log-level error >"$W/out" &
PIDS+=($!)
until grep -q listening "$W/out" 2>/dev/null; do sleep 0.01; done
S=$(grep -o 'http://[0-9.:]*' "$W/out")
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$S/readyz")" = 200 ]; do sleep 0.01; done
"$FLOOR" "$W/floor.db" >"$W/floor.out" &
PIDS+=($!)
until grep -q ready "$W/floor.out" 2>/dev/null; do sleep 0.01; done
sleep 1
printf '%-13s %8s  %s\n' program "idle RSS" "largest parts"
printf '%-13s %5s MiB  %s\n' sriovd "$(rss "${PIDS[0]}")" "$(breakdown "${PIDS[0]}")"
printf '%-13s %5s MiB  %s\n' RuntimeFloor "$(rss "${PIDS[1]}")" "$(breakdown "${PIDS[1]}")"
