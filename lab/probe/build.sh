#!/bin/bash
# lab/probe/build.sh [OUT] - compile netlink-probe from the repo's Netlink sources plus Probe.swift, on the
# host (the guest runs the host's filesystem, so the binary and its Swift runtime work there unchanged).
# Default OUT: $LAB_DIR/bin/netlink-probe (LAB_DIR defaults to lab/cache).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-${LAB_DIR:-$ROOT/lab/cache}/bin/netlink-probe}
mkdir -p "$(dirname "$OUT")"
swiftc -O -parse-as-library -module-name NetlinkProbe -swift-version 6 \
    "$ROOT"/Sources/Netlink/*.swift "$HERE/Probe.swift" -o "$OUT"
echo "$OUT"
