#!/bin/bash
# lab/test-move.sh - issue 18 against the real 6.1 kernel in the lab VM: an allocation moved between two VFs of the
# real igb keeps its MAC and VLAN (`ip link` shows them on the new VF, the old one restored), a release naming the
# old generation is refused, cordon and drain answer. Runs lab/scenarios/move.sh in the guest.
# Needs lab/setup.sh to have run. Env: LAB_DIR, LAB_OUT as for run-in-vm.sh; SRIOVD_BIN to skip the build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export LAB_DIR=${LAB_DIR:-$HERE/cache}
export LAB_OUT=${LAB_OUT:-$LAB_DIR/runs/move-$(date +%Y%m%d-%H%M%S)-$$}
for tool in curl jq bc; do
    command -v $tool >/dev/null || { echo "test-move: $tool is missing on the host (the guest uses the host's)" >&2; exit 2; }
done
if [ -z "${SRIOVD_BIN:-}" ]; then
    (cd "$ROOT" && swift build --product sriovd 2>&1 | tail -1)
    SRIOVD_BIN=$(cd "$ROOT" && swift build --show-bin-path)/sriovd
fi
[ -x "$SRIOVD_BIN" ] || { echo "test-move: no sriovd binary at $SRIOVD_BIN" >&2; exit 2; }
set +e
"$HERE/run-in-vm.sh" "$(printf 'LAB_SRIOVD=%q LAB_SCENARIOS=%q bash %q' \
    "$SRIOVD_BIN" "$HERE/scenarios" "$HERE/scenarios/move.sh")"
rc=$?
set -e
echo "== test-move: guest exit $rc; sriovd.log in $LAB_OUT"
exit $rc
