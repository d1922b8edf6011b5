#!/bin/bash
# lab/vfprobe/build.sh [OUT] - compile vf-probe on the host from the repo's SRIOVCore, Threading, Netlink and SRIOVHardware
# sources (each its own module, as in Package.swift, built as a static library with plain swiftc) plus
# VFProbe.swift. The guest runs the host's filesystem, so the binary works there unchanged.
# Default OUT: $LAB_DIR/bin/vf-probe (LAB_DIR defaults to lab/cache).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-${LAB_DIR:-$ROOT/lab/cache}/bin/vf-probe}
B=$(dirname "$OUT")/vfprobe-modules
mkdir -p "$B"
# -package-name: the modules declare `package` members, which need one (the same for all, as under SwiftPM).
module() {  # NAME: one module from Sources/NAME, as a static library with its .swiftmodule
    swiftc -O -parse-as-library -swift-version 6 -module-name "$1" -package-name sriovd -I "$B" \
        -I "$ROOT/Sources/CLinux" -emit-module -emit-module-path "$B/$1.swiftmodule" -emit-library -static \
        -o "$B/lib$1.a" $(find "$ROOT/Sources/$1" -name '*.swift' | sort)
}
module SRIOVCore
module Threading
module Netlink
module SRIOVHardware
swiftc -O -parse-as-library -swift-version 6 -module-name VFProbe -I "$B" -I "$ROOT/Sources/CLinux" \
    "$HERE/VFProbe.swift" -L "$B" -lSRIOVHardware -lNetlink -lThreading -lSRIOVCore -o "$OUT"
echo "$OUT"
