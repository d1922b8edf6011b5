#!/bin/bash
# lab/probe/build.sh [OUT] - compile netlink-probe on the host from the repo's Threading, SRIOVCore, Netlink,
# SRIOVHardware and HostSimulator sources (each its own module, as in Package.swift, built as a static library with
# plain swiftc) plus Probe.swift. The guest runs the host's filesystem, so the binary and its Swift runtime work
# there unchanged.
# Default OUT: $LAB_DIR/bin/netlink-probe (LAB_DIR defaults to lab/cache).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-${LAB_DIR:-$ROOT/lab/cache}/bin/netlink-probe}
B=$(dirname "$OUT")/probe-modules
mkdir -p "$B"
# One -package-name for every module: HostSimulator uses the package-level codec of Netlink and helpers of
# SRIOVHardware, as it does under SwiftPM.
module() {  # NAME: one module from Sources/NAME, as a static library with its .swiftmodule
    swiftc -O -parse-as-library -swift-version 6 -module-name "$1" -package-name sriovd -I "$B" \
        -I "$ROOT/Sources/CLinux" -emit-module -emit-module-path "$B/$1.swiftmodule" -emit-library -static \
        -o "$B/lib$1.a" $(find "$ROOT/Sources/$1" -name '*.swift' | sort)
}
module Threading
module SRIOVCore
module Netlink
module SRIOVHardware
# SimulatedRTNetlink, which the probe runs beside the real kernel, lives in HostSimulator.
module HostSimulator
swiftc -O -parse-as-library -swift-version 6 -module-name NetlinkProbe -I "$B" -I "$ROOT/Sources/CLinux" \
    "$HERE/Probe.swift" -L "$B" -lHostSimulator -lSRIOVHardware -lNetlink -lThreading -lSRIOVCore -o "$OUT"
echo "$OUT"
