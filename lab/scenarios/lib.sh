# lab/scenarios/lib.sh - helpers for the guest scenarios: a check table, curl against sriovd, waiting.
# Sourced inside the lab VM (bash, root). Needs curl and jq, which the guest has from the host's root.
SRIOVD_URL=${SRIOVD_URL:-http://127.0.0.1:8080}
CHECKS_OK=0
CHECKS_FAIL=0
CHECK_TABLE=()
T0=$(date +%s.%N)

elapsed() { printf '%6.1f' "$(echo "$(date +%s.%N) - $T0" | bc)"; }
step() { echo; echo "== [$(elapsed)s] $*"; }
note() { echo "   $*"; }

# check NAME CONDITION...: runs the condition (a command); records and prints ok or FAIL.
check() {
    local name=$1; shift
    if "$@" >/dev/null 2>&1; then
        CHECKS_OK=$((CHECKS_OK + 1)); CHECK_TABLE+=("ok   | $name"); echo "   ok   $name"
    else
        CHECKS_FAIL=$((CHECKS_FAIL + 1)); CHECK_TABLE+=("FAIL | $name"); echo "   FAIL $name"
    fi
}
# check_eq NAME GOT WANT
check_eq() {
    local name=$1 got=$2 want=$3
    if [ "$got" = "$want" ]; then
        CHECKS_OK=$((CHECKS_OK + 1)); CHECK_TABLE+=("ok   | $name"); echo "   ok   $name = $got"
    else
        CHECKS_FAIL=$((CHECKS_FAIL + 1)); CHECK_TABLE+=("FAIL | $name (got '$got', want '$want')")
        echo "   FAIL $name: got '$got', want '$want'"
    fi
}

# api METHOD PATH [BODY]: sets STATUS and BODY (the response text); prints a one-line transcript.
api() {
    local method=$1 path=$2 data=${3:-} out
    out=$(mktemp)
    if [ -n "$data" ]; then
        STATUS=$(curl -s -o "$out" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' \
            -H "X-Request-Id: lab-$RANDOM" --max-time 120 --data "$data" "$SRIOVD_URL$path")
    else
        STATUS=$(curl -s -o "$out" -w '%{http_code}' -X "$method" --max-time 120 "$SRIOVD_URL$path")
    fi
    BODY=$(cat "$out"); rm -f "$out"
    local shown=$BODY
    [ ${#shown} -gt 400 ] && shown="${shown:0:400}..."
    echo "   > $method $path ${data:+$data }-> $STATUS $shown"
}
# j [JQ-OPTIONS] FILTER: jq -r on the last response body
j() { printf '%s' "$BODY" | jq -r "$@" 2>/dev/null; }

# wait_for CONDITION [TRIES]: evaluates CONDITION every 0.2 s.
wait_for() {
    local tries=${2:-75}
    for _ in $(seq "$tries"); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "   timeout waiting for: $1"; return 1
}

# sysfs_write FILE VALUE: writes and prints the errno text the kernel answered ("ok" on success).
sysfs_write() {
    local err
    if err=$( { echo "$2" > "$1"; } 2>&1 ); then echo ok; else echo "${err##*: }"; fi
}

print_table() {
    echo
    echo "== checks ($CHECKS_OK ok, $CHECKS_FAIL FAIL, $(elapsed) s in the guest)"
    local row
    for row in "${CHECK_TABLE[@]}"; do echo "   $row"; done
    echo
    if [ "$CHECKS_FAIL" = 0 ] && [ "$CHECKS_OK" -gt 0 ]; then echo "== result: PASS"; else echo "== result: FAIL"; fi
}
