#!/bin/bash
# lab/run-in-vm.sh 'COMMAND' - boot Debian's stock kernel under QEMU (TCG), run COMMAND with bash as
# root inside a guest whose root filesystem is this host's (read-only 9p under a tmpfs overlay: the
# guest's writes vanish), power off, and exit with COMMAND's exit code, its stdout and stderr on ours.
# 125 means the guest reported no exit code (timeout, panic); the console's tail is printed then.
#
# Guest PCI hardware (q35 with an emulated Intel IOMMU):
#   0000:01:00.0  QEMU NVMe controller with SR-IOV ($LAB_NVME_VFS VFs)              [LAB_NVME=1]
#   0000:02:00.0  Intel 82576 NIC (igb), netdev eth0, 7 VFs (igbvf)                [LAB_IGB=1]
# netdevsim.ko is available too (built by setup.sh). No udev runs: modprobe drivers yourself.
# COMMAND starts in the host's current directory. $LAB_OUT (default $LAB_DIR/runs/<stamp>) is the
# guest's writable /lab-io; stdout, stderr, rc, dmesg, console.log and timing are left there.
#
# Env: LAB_DIR (lab/cache) LAB_MEM (MiB, 1024) LAB_SMP (1) LAB_TIMEOUT (s, 300) LAB_NVME (1)
#      LAB_NVME_VFS (4) LAB_IGB (1) LAB_IOMMU (1) LAB_APPEND (kernel args) LAB_QEMU_EXTRA (qemu args)
#      LAB_CONSOLE=1 (print the guest console on stderr)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=${LAB_DIR:-$HERE/cache}
[ $# -ge 1 ] || { echo "usage: $0 'command'" >&2; exit 2; }
KV=${KV:-$(ls "$LAB/kernel/lib/modules" 2>/dev/null | head -1)}
QEMU_BIN=$LAB/qemu10/usr/bin/qemu-system-x86_64
if [ -z "$KV" ] || [ ! -f "$LAB/vmlinux-$KV" ] || [ ! -x "$QEMU_BIN" ] || [ ! -f "$LAB/initramfs.cpio.gz" ]; then
    echo "run-in-vm: the lab in $LAB is not set up; run $HERE/setup.sh first" >&2
    exit 2
fi
OUT=${LAB_OUT:-$LAB/runs/$(date +%Y%m%d-%H%M%S)-$$}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{cmd.sh,rc,stdout,stderr,console.log,dmesg,timing}
{ printf 'cd %q 2>/dev/null || cd /\n' "$PWD"; printf '%s\n' "$1"; } > "$OUT/cmd.sh"
chmod +x "$OUT/cmd.sh"

args=(-accel tcg -machine q35 -cpu max -m "${LAB_MEM:-1024}" -smp "${LAB_SMP:-1}"
      -display none -monitor none -nodefaults -no-reboot -serial "file:$OUT/console.log"
      -L "$LAB/qemu10/usr/share/qemu" -L "$LAB/qemu10/usr/share/seabios"
      -kernel "$LAB/vmlinux-$KV" -initrd "$LAB/initramfs.cpio.gz"
      -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
      -virtfs "local,path=$LAB/kernel/lib/modules/$KV,mount_tag=kmods,security_model=none,readonly=on"
      -virtfs "local,path=$OUT,mount_tag=labio,security_model=none")
cmdline="console=ttyS0 quiet panic=-1 mitigations=off"
if [ "${LAB_IOMMU:-1}" = 1 ]; then
    args+=(-device intel-iommu,intremap=off)
    cmdline+=" intel_iommu=on"
fi
if [ "${LAB_NVME:-1}" = 1 ]; then
    n=${LAB_NVME_VFS:-4}
    args+=(-device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1
           -device nvme-subsys,id=nvmesubsys,nqn=lab-nvme-subsys
           -device "nvme,id=nvme0,bus=rp1,serial=LABNVME0,subsys=nvmesubsys,sriov_max_vfs=$n,sriov_vq_flexible=$((n * 2)),sriov_vi_flexible=$n,max_ioqpairs=$((n * 2 + 2)),msix_qsize=$((n + 1))")
fi
if [ "${LAB_IGB:-1}" = 1 ]; then
    args+=(-device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2
           -netdev user,id=labnet,restrict=on -device igb,bus=rp2,netdev=labnet,mac=52:54:00:12:34:56)
fi
cmdline+=" ${LAB_APPEND:-}"
start=$(date +%s.%N)
# shellcheck disable=SC2086
timeout --foreground "${LAB_TIMEOUT:-300}" "$QEMU_BIN" "${args[@]}" -append "$cmdline" ${LAB_QEMU_EXTRA:-}
qemu_rc=$?
echo "qemu_rc=$qemu_rc wall_s=$(echo "$(date +%s.%N) - $start" | bc)" > "$OUT/timing"
[ "${LAB_CONSOLE:-0}" = 1 ] && cat "$OUT/console.log" >&2
cat "$OUT/stdout" 2>/dev/null
cat "$OUT/stderr" >&2 2>/dev/null
if [ ! -s "$OUT/rc" ]; then
    echo "run-in-vm: the guest gave no exit code (qemu rc=$qemu_rc; 124 = timeout). Console tail:" >&2
    tail -n 30 "$OUT/console.log" >&2
    exit 125
fi
exit "$(cat "$OUT/rc")"
