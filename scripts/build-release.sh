#!/usr/bin/env bash
# Builds sriovd as it ships and prints the binary's path: release, with the Swift runtime linked in
# (--static-swift-stdlib; Package.swift adds lld and packed relocations), so the host needs only glibc,
# libstdc++ and libsqlite3. Every script that runs a release sriovd builds it here, so they share one build.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product sriovd --static-swift-stdlib >&2
echo "$(swift build -c release --static-swift-stdlib --show-bin-path)/sriovd"
