#!/usr/bin/env bash
# Builds every libFuzzer target and runs each for a bounded time, printing executions and crashes.
# Usage: Fuzz/run.sh [seconds per target, default 60] [target ...]
# A target is built from its file in Fuzz/Targets plus the product sources it needs, compiled together into one
# module (imports of the product's own modules are stripped), with -sanitize=fuzzer,address. The committed seed
# corpus in Fuzz/Corpus/<target> is copied into a scratch corpus so that runs never modify it; crashes are kept
# in Fuzz/.build/artifacts/<target>/. Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-60}
shift || true
S=Sources
HTTP="$S/HTTPServer/HTTPHeaders.swift $S/HTTPServer/HTTPMethod.swift $S/HTTPServer/HTTPRequest.swift
      $S/HTTPServer/HTTPRequestParser.swift $S/HTTPServer/HTTPServer+Configuration.swift $S/HTTPServer/HTTPStatus.swift
      $S/HTTPServer/HTTPSyntax.swift $S/HTTPServer/TLSCredentials.swift $S/HTTPServer/Lock.swift"
declare -A SOURCES=(
    [http_parser]="$HTTP"
    [chunked]="$HTTP"
    [json_bodies]="$S/SRIOVCore/*.swift $S/SRIOVService/API/JSONBody.swift $S/SRIOVService/API/RequestBodies.swift
                   $S/SRIOVService/API/WireTypes.swift $S/SRIOVService/Health/Health.swift $S/Netlink/VFLinkInfo.swift
                   $HTTP $S/HTTPServer/HTTPResponse.swift $S/HTTPServer/ProblemDetails.swift"
    [pci_query]="$S/SRIOVCore/*.swift $HTTP"
    [admission]="$HTTP $S/HTTPServer/AdmissionLedger.swift $S/HTTPServer/HTTPHandler.swift $S/HTTPServer/HTTPResponse.swift
                 $S/HTTPServer/ClientCertificate.swift
                 $S/HTTPServer/ResponseStream.swift
                 $S/HTTPServer/ProblemDetails.swift"
    [rtnetlink]="$S/Netlink/ABI.swift $S/Netlink/Bytes.swift $S/Netlink/NetlinkError.swift $S/Netlink/NetlinkMessage.swift
                 $S/Netlink/RTNetlinkCodec.swift $S/Netlink/VFLinkInfo.swift"
)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(http_parser chunked json_bodies pci_query rtnetlink admission)
OUT=Fuzz/.build
export SWIFT_BACKTRACE=enable=no
mkdir -p "$OUT"

build() {
    local target=$1 stage="$OUT/src/$1"
    rm -rf "$stage"
    mkdir -p "$stage"
    # shellcheck disable=SC2086
    for file in ${SOURCES[$target]}; do
        sed -E '/^import (HTTPServer|SRIOVCore|SRIOVStore|Netlink|SRIOVHardware)$/d' "$file" >"$stage/$(basename "$file")"
    done
    cp "Fuzz/Targets/$target.swift" "$stage/zz_target_$target.swift"
    # -package-name: Netlink's codec types are `package` (HostSimulator uses them), which needs a package name.
    # -I Sources/COpenSSL: the server configuration names its TLS credentials (the system OpenSSL).
    if ! swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name "Fuzz_$target" -package-name sriovd \
        -I Sources/COpenSSL \
        "$stage"/*.swift -o "$OUT/$target" >"$OUT/$target.build.log" 2>&1; then
        cat "$OUT/$target.build.log" >&2
        return 1
    fi
}

status=0
printf '%-12s %10s %12s %8s %8s %s\n' target seconds executions exec/s corpus crashes
for target in "${TARGETS[@]}"; do
    build "$target"
    corpus="$OUT/corpus/$target"
    artifacts="$OUT/artifacts/$target"
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    cp -n "Fuzz/Corpus/$target"/* "$corpus"/ 2>/dev/null || true
    dict=()
    [ -f "Fuzz/Dictionaries/$target.dict" ] && dict=(-dict="Fuzz/Dictionaries/$target.dict")
    log="$OUT/$target.log"
    set +e
    "$OUT/$target" "$corpus" "${dict[@]}" -max_total_time="$SECONDS_PER" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log")
    rate=$(awk '/stat::average_exec_per_sec/ {print $NF}' "$log")
    size=$(find "$corpus" -type f | wc -l)
    crashes=$(find "$artifacts" -type f | wc -l)
    printf '%-12s %10s %12s %8s %8s %s\n' "$target" "$SECONDS_PER" "${execs:-?}" "${rate:-?}" "$size" "$crashes"
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "--- $target failed (exit $rc); the end of $log:" >&2
        grep -aE 'ERROR|Fatal|precondition|SUMMARY|Test unit written|whole:|split|parser:|reference:' "$log" | head -20 >&2
    fi
done
exit $status
