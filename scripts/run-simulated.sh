#!/usr/bin/env bash
# Builds sriovd and runs it on a simulated host kept in ./simhost (created on first run), listening on
# 127.0.0.1:8080. Installs the one system package it needs if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s libsqlite3-dev >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq libsqlite3-dev pkg-config
fi
BIN=$(scripts/build-release.sh)
exec "$BIN" serve --simulate "${SIMHOST:-./simhost}" \
    --listen "${LISTEN:-127.0.0.1:8080}" "$@"
