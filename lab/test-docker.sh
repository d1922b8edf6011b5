#!/bin/bash
# lab/test-docker.sh - sriovd's Docker network driver on the real 6.1 kernel in the lab VM (issue 15): builds sriovd
# on the host (debug), boots the VM, and inside it runs lab/scenarios/docker.sh, which makes the driver calls over the
# plugin socket as dockerd does and moves the real igbvf netdev into a network namespace and back as libnetwork does,
# checking MTU, MAC and the PF-side VF settings with ip. Prints a table of checks and `== result: PASS|FAIL`.
# Needs lab/setup.sh to have run. Env: LAB_DIR, LAB_OUT as for run-in-vm.sh; SRIOVD_BIN to skip the build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export LAB_DIR=${LAB_DIR:-$HERE/cache}
export LAB_OUT=${LAB_OUT:-$LAB_DIR/runs/docker-$(date +%Y%m%d-%H%M%S)-$$}
for tool in curl jq bc; do
    command -v $tool >/dev/null || { echo "test-docker: $tool is missing on the host (the guest uses the host's)" >&2; exit 2; }
done
if [ -z "${SRIOVD_BIN:-}" ]; then
    (cd "$ROOT" && swift build --product sriovd 2>&1 | tail -1)
    SRIOVD_BIN=$(cd "$ROOT" && swift build --show-bin-path)/sriovd
fi
set +e
"$HERE/run-in-vm.sh" "$(printf 'LAB_SRIOVD=%q LAB_SCENARIOS=%q bash %q' \
    "$SRIOVD_BIN" "$HERE/scenarios" "$HERE/scenarios/docker.sh")"
rc=$?
set -e
echo "== test-docker: guest exit $rc; sriovd.log in $LAB_OUT"
if [ $rc != 0 ] && [ -s "$LAB_OUT/sriovd.log" ]; then tail -n 20 "$LAB_OUT/sriovd.log"; fi
exit $rc
