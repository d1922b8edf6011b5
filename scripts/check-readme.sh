#!/usr/bin/env bash
# Runs the README's curl walk-through against a fresh simulated host and checks each request's status: the
# number in a trailing "# NNN" comment, or any 2xx where there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SRIOVD_BIN:-.build/debug/sriovd}
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$BIN" serve --simulate "$WORK/host" --listen 127.0.0.1:0 --log-level error >"$WORK/out" &
PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
export SRIOVD=$(grep -o 'http://[0-9.:]*' "$WORK/out")

# The walk-through block, continuation lines joined.
python3 - "$WORK" <<'PY'
import re, sys
text = open("README.md").read()
block = text.split("## Walk-through with curl", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
lines, expected, pending = [], [], ""
for raw in block.splitlines():
    pending += raw[:-1] + " " if raw.endswith("\\") else raw
    if raw.endswith("\\"):
        continue
    line, pending = pending, ""
    if "curl " in line:
        match = re.search(r"#\s*(\d{3})\b", line)
        expected.append(match.group(1) if match else "2xx")
    lines.append(line)
open(sys.argv[1] + "/walk.sh", "w").write("\n".join(lines) + "\n")
open(sys.argv[1] + "/expected", "w").write("\n".join(expected) + "\n")
PY

STATUS_FILE="$WORK/statuses"
: >"$STATUS_FILE"
curl() {
    local out
    # A stream (`curl -N -m SECONDS`) ends by curl's own time limit: exit 28 is its normal end.
    out=$(command curl -sS -w '\n%{http_code}' "$@") || [ $? -eq 28 ]
    printf '%s\n' "${out%$'\n'*}"
    printf '%s\n' "${out##*$'\n'}" >>"$STATUS_FILE"
}
export -f curl
export STATUS_FILE
bash -e "$WORK/walk.sh" >"$WORK/walk.out"

paste "$WORK/expected" "$STATUS_FILE" | nl | while read -r n want got; do
    case "$want" in
        2xx) [[ "$got" == 2?? ]] || { echo "README curl #$n: expected 2xx, got $got"; exit 1; } ;;
        *) [[ "$got" == "$want" ]] || { echo "README curl #$n: expected $want, got $got"; exit 1; } ;;
    esac
done
[ "$(wc -l <"$WORK/expected")" -eq "$(wc -l <"$STATUS_FILE")" ] || { echo "README: not every curl ran"; exit 1; }
echo "README: $(wc -l <"$STATUS_FILE") curl examples answered as documented"
