#!/usr/bin/env bash
# Contract testing (issue 7 §1): schemathesis against a live sriovd on a fresh simulated host, using openapi.yaml.
# Every operation, all checks (no 5xx, status codes, content types, headers and bodies conforming to the schema),
# plus the stateful phase where openapi.yaml declares links.
# Usage: scripts/contract.sh [max examples per operation, default 25]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-25}
command -v schemathesis >/dev/null || python3 -m pip install --quiet schemathesis
CONFIG=${CONFIG:-debug}
swift build -c "$CONFIG" --product sriovd >/dev/null
BIN=$(swift build -c "$CONFIG" --show-bin-path)/sriovd
W=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$W"' EXIT
"$BIN" serve --simulate "$W/host" --db "$W/sriovd.db" --listen 127.0.0.1:0 --log-level error >"$W/out" &
PID=$!
for _ in $(seq 100); do grep -q listening "$W/out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep -o 'http://[0-9.:]*' "$W/out")
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/readyz")" = 200 ]; do sleep 0.1; done
# Give the E810 VFs so that allocations can succeed and the examples reach the success paths.
curl -sf -X POST "$ADDR/pfs/0000:5e:00.0/vfs" -H 'Content-Type: application/json' -d '{"count":16}' >/dev/null
echo "schemathesis $(schemathesis --version | awk '{print $NF}') against $ADDR, max $N examples per operation"
# 422 is how sriovd answers a well-formed request that breaks a rule the schema cannot express (a count above
# the PF's sriov_totalvfs, a setting the driver refuses): valid data may get it without being "rejected".
cat >"$W/schemathesis.toml" <<'TOML'
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
TOML
set +e
(cd "$W" && schemathesis run "$OLDPWD/openapi.yaml" --url "$ADDR" --checks all --max-examples "$N" --seed 1 \
    --report junit --report-dir "${REPORT_DIR:-$W/report}" 2>&1)
rc=$?
set -e
kill -0 $PID 2>/dev/null || { echo "sriovd died during the contract run" >&2; exit 1; }
exit "$rc"
