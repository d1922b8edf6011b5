#!/usr/bin/env bash
# Soak with hostile clients (issue 7 §4). Usage: scripts/soak.sh [seconds=60] [soak.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-release}
swift build -c "$CONFIG" --product sriovd >/dev/null
exec python3 scripts/soak.py "$(swift build -c "$CONFIG" --show-bin-path)/sriovd" "${1:-60}" "${@:2}"
