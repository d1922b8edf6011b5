#!/bin/bash
# lab/probe/build.sh [OUT] - compile netlink-probe from the repo's Netlink and Threading sources plus
# Probe.swift, on the host (the guest runs the host's filesystem, so the binary and its Swift runtime work there
# unchanged).
# Default OUT: $LAB_DIR/bin/netlink-probe (LAB_DIR defaults to lab/cache).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-${LAB_DIR:-$ROOT/lab/cache}/bin/netlink-probe}
B=$(dirname "$OUT")/probe-modules
mkdir -p "$B"
# Netlink imports Threading (its uevent reader thread), which is built first as a module of its own.
swiftc -O -parse-as-library -swift-version 6 -module-name Threading -I "$ROOT/Sources/CLinux" \
    -emit-module -emit-module-path "$B/Threading.swiftmodule" -emit-library -static -o "$B/libThreading.a" \
    "$ROOT"/Sources/Threading/*.swift
swiftc -O -parse-as-library -module-name NetlinkProbe -swift-version 6 -I "$B" -I "$ROOT/Sources/CLinux" \
    "$ROOT"/Sources/Netlink/*.swift "$HERE/Probe.swift" -L "$B" -lThreading -o "$OUT"
echo "$OUT"
