#!/bin/bash
# lab/test-api.sh - prove sriovd's whole REST API against the real 6.1 kernel in the lab VM (issue 4 §6).
# Builds sriovd on the host (debug), boots the VM once, and inside it runs lab/scenarios/api.sh, which starts
# `sriovd serve --sysfs /sys` and drives it with curl, checking every answer against `ip -j -d link` and
# sysfs: the igb flow (create, allocate with settings, resize refused, release restores, vfio-pci and back),
# EBUSY, ERANGE and ENOENT from the real kernel, a PATCH /vfs whose completion the database refuses (the igb VF
# restored before the 500), the NVMe PF's VFs on vfio-pci, and the audit.
# Prints a table of checks and `== result: PASS|FAIL`; exits non-zero on any failure.
# Needs lab/setup.sh to have run. Env: LAB_DIR, LAB_OUT as for run-in-vm.sh; SRIOVD_BIN to skip the build.
# sriovd.log, audit.jsonl and the database are left in $LAB_OUT.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export LAB_DIR=${LAB_DIR:-$HERE/cache}
export LAB_OUT=${LAB_OUT:-$LAB_DIR/runs/api-$(date +%Y%m%d-%H%M%S)-$$}
start=$(date +%s.%N)
for tool in curl jq bc; do   # the guest runs the host's own binaries
    command -v $tool >/dev/null || { echo "test-api: $tool is missing on the host (the guest uses the host's)" >&2; exit 2; }
done
if [ -z "${SRIOVD_BIN:-}" ]; then
    echo "== building sriovd (swift build, debug)"
    (cd "$ROOT" && swift build --product sriovd 2>&1 | tail -1)
    SRIOVD_BIN=$(cd "$ROOT" && swift build --show-bin-path)/sriovd
fi
[ -x "$SRIOVD_BIN" ] || { echo "test-api: no sriovd binary at $SRIOVD_BIN" >&2; exit 2; }
echo "== booting the lab VM (LAB_OUT=$LAB_OUT)"
set +e
"$HERE/run-in-vm.sh" "$(printf 'LAB_SRIOVD=%q LAB_SCENARIOS=%q bash %q' \
    "$SRIOVD_BIN" "$HERE/scenarios" "$HERE/scenarios/api.sh")"
rc=$?
set -e
echo "== test-api: guest exit $rc; $(cat "$LAB_OUT/timing" 2>/dev/null);" \
     "total $(echo "$(date +%s.%N) - $start" | bc | cut -c1-6) s; sriovd.log and audit.jsonl in $LAB_OUT"
if [ $rc != 0 ] && [ -s "$LAB_OUT/sriovd.log" ]; then
    echo "== tail of sriovd.log"; tail -n 20 "$LAB_OUT/sriovd.log"
fi
exit $rc
