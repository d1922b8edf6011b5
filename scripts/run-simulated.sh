#!/usr/bin/env bash
# Builds sriovd and runs it on a simulated host kept in ./simhost (created on first run), listening on
# 127.0.0.1:8080. Installs the system packages it builds against (SQLite and OpenSSL headers) if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s libsqlite3-dev libssl-dev >/dev/null 2>&1 || ! command -v pkg-config >/dev/null; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq libsqlite3-dev libssl-dev pkg-config
fi
BIN=$(scripts/build-release.sh)
exec "$BIN" serve --simulate "${SIMHOST:-./simhost}" \
    --listen "${LISTEN:-127.0.0.1:8080}" "$@"
