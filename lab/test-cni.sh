#!/bin/bash
# lab/test-cni.sh - prove sriovd-cni against the real 6.1 kernel in the lab VM (issue 14): a real igbvf VF's netdev
# moved into a network namespace by ADD and back by DEL, as a CNI runtime runs the plugin.
# Builds sriovd and sriovd-cni on the host (debug), boots the VM once, and inside it runs lab/scenarios/cni.sh, which
# starts `sriovd serve --sysfs /sys --unix ...` and checks with `ip` in the namespace, on the host and on the PF's
# vf lines: MAC, VLAN, QoS, spoofchk, trust, MTU and name after ADD; CHECK; sriovd restarted while the netdev is
# away; after DEL the netdev back under its original name and MTU and the VF's settings restored; DEL repeated and
# DEL after the namespace ended.
# Prints a table of checks and `== result: PASS|FAIL`; exits non-zero on any failure.
# Needs lab/setup.sh to have run. Env: LAB_DIR, LAB_OUT as for run-in-vm.sh; SRIOVD_BIN and SRIOVD_CNI_BIN to skip
# the build. sriovd.log and the database are left in $LAB_OUT.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export LAB_DIR=${LAB_DIR:-$HERE/cache}
export LAB_OUT=${LAB_OUT:-$LAB_DIR/runs/cni-$(date +%Y%m%d-%H%M%S)-$$}
start=$(date +%s.%N)
for tool in curl jq bc ip; do   # the guest runs the host's own binaries
    command -v $tool >/dev/null || { echo "test-cni: $tool is missing on the host (the guest uses the host's)" >&2; exit 2; }
done
if [ -z "${SRIOVD_BIN:-}" ] || [ -z "${SRIOVD_CNI_BIN:-}" ]; then
    echo "== building sriovd and sriovd-cni (swift build, debug)"
    (cd "$ROOT" && swift build --product sriovd 2>&1 | tail -1 && swift build --product sriovd-cni 2>&1 | tail -1)
    SRIOVD_BIN=$(cd "$ROOT" && swift build --show-bin-path)/sriovd
    SRIOVD_CNI_BIN=$(cd "$ROOT" && swift build --show-bin-path)/sriovd-cni
fi
for bin in "$SRIOVD_BIN" "$SRIOVD_CNI_BIN"; do
    [ -x "$bin" ] || { echo "test-cni: no binary at $bin" >&2; exit 2; }
done
echo "== booting the lab VM (LAB_OUT=$LAB_OUT)"
set +e
LAB_TIMEOUT=${LAB_TIMEOUT:-900} "$HERE/run-in-vm.sh" "$(printf 'LAB_SRIOVD=%q LAB_CNI=%q LAB_SCENARIOS=%q bash %q' \
    "$SRIOVD_BIN" "$SRIOVD_CNI_BIN" "$HERE/scenarios" "$HERE/scenarios/cni.sh")"
rc=$?
set -e
echo "== test-cni: guest exit $rc; $(cat "$LAB_OUT/timing" 2>/dev/null);" \
     "total $(echo "$(date +%s.%N) - $start" | bc | cut -c1-6) s; sriovd.log in $LAB_OUT"
if [ $rc != 0 ] && [ -s "$LAB_OUT/sriovd.log" ]; then
    echo "== tail of sriovd.log"; tail -n 20 "$LAB_OUT/sriovd.log"
fi
exit $rc
