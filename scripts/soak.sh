#!/usr/bin/env bash
# Soak with hostile clients (issue 7 §4). Usage: scripts/soak.sh [seconds=60] [soak.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-release}
if [ "$CONFIG" = release ]; then
    BIN=$(scripts/build-release.sh)
else
    swift build -c "$CONFIG" --product sriovd >/dev/null
    BIN=$(swift build -c "$CONFIG" --show-bin-path)/sriovd
fi
exec python3 scripts/soak.py "$BIN" "${1:-60}" "${@:2}"
