#!/usr/bin/env bash
# The whole test suite: unit and socket tests, the OpenAPI contract, and formatting.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== swift build"
swift build
echo "== swift test"
swift test --no-parallel
echo "== openapi.yaml is a valid OpenAPI 3.1 document, and the live server conforms to it"
python3 scripts/check-openapi.py
echo "== the README's curl walk-through"
./scripts/check-readme.sh
echo "== swift format lint --strict"
swift format lint --strict --recursive Package.swift Sources Tests
echo "== all tests passed"
