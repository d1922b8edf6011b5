#!/usr/bin/env bash
# Writes docs/sriovd.8, the sriovd(8) man page, from sriovd's command-line definitions with swift-argument-parser's
# manual generator (`swift package plugin generate-manual`, offline: the plugin ships in the resolved
# swift-argument-parser). Run it after changing an option, a subcommand or a help text. `--check` only reports
# whether docs/sriovd.8 is what the definitions generate now (exit 1 when not; the date line is not compared).
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/sriovd.8
check=0
if [[ "${1:-}" == "--check" ]]; then check=1; fi

swift package plugin generate-manual --configuration debug --section 8 >&2
generated=.build/plugins/GenerateManual/outputs/sriovd/sriovd.8
[ -s "$generated" ] || { echo "generate-manual: the plugin wrote no $generated" >&2; exit 1; }
if ((check)); then
    if diff <(grep -v '^\.Dd ' "$generated") <(grep -v '^\.Dd ' "$out") >&2; then
        echo "generate-manual: $out is current"
        exit 0
    fi
    echo "generate-manual: $out is out of date; run scripts/generate-manual.sh" >&2
    exit 1
fi
install -m 0644 "$generated" "$out"
echo "generate-manual: wrote $out"
