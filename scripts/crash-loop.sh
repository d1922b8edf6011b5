#!/usr/bin/env bash
# Crash loops (issue 7 §3, issue 11): N cycles of start sriovd, concurrent allocate/release/resize clients that
# also PATCH held VFs' settings and free VFs' baselines, kill -9 at a random moment, integrity check, restart,
# invariant checks (nothing acknowledged lost, no VF held twice, audit, hardware = database, every VF at its
# acknowledged settings). --move-cycles M first kills -9 during moves (issue 18): each allocation on exactly one
# VF with its identity, the other VF restored. Usage: scripts/crash-loop.sh [N=20] [--seed S] [--move-cycles M]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
shift || true
CONFIG=${CONFIG:-debug}
swift build -c "$CONFIG" --product sriovd >/dev/null
exec python3 scripts/crash-loop.py "$(swift build -c "$CONFIG" --show-bin-path)/sriovd" "$N" "$@"
