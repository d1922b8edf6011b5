#!/usr/bin/env bash
# Builds sriovd and sriovd-cni as they ship and prints sriovd's path (sriovd-cni is beside it): release, with the
# Swift runtime linked in (--static-swift-stdlib; Package.swift adds lld and packed relocations), so the host needs
# only glibc, libstdc++ and libsqlite3. Every script that runs a release sriovd builds it here, so they share one
# build; deploy/container/build-and-run.sh puts both binaries in the image.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product sriovd --static-swift-stdlib >&2
# The CNI plugin, linked the same way, lands beside it (the container image takes both).
swift build -c release --product sriovd-cni --static-swift-stdlib >&2
echo "$(swift build -c release --static-swift-stdlib --show-bin-path)/sriovd"
