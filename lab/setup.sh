#!/bin/bash
# lab/setup.sh - prepare the real-kernel SR-IOV lab in $LAB_DIR (default: lab/cache, gitignored).
#
# Idempotent: every step checks whether its result is already there. Needs root and a Debian 12
# (bookworm) host with its apt sources. What it installs on the host with apt-get (only if missing):
#   qemu-system-x86 busybox-static cpio kmod bc gcc make python3 linux-headers-$KV
# (the headers are only used to compile netdevsim.ko; the host's own kernel is not touched).
# What it puts under $LAB_DIR:
#   dl/                 downloaded .deb files (kernel image, kernel source, QEMU 10 from bookworm-backports)
#   kernel/             the Debian kernel package unpacked (modules incl. an out-of-tree netdevsim.ko)
#   vmlinux-$KV         the uncompressed kernel, booted directly (PVH) - faster than the bzImage under TCG
#   qemu10/             QEMU 10 unpacked (bookworm's 7.2 has no emulated igb NIC)
#   initramfs.cpio.gz   busybox + virtio/9p/overlay modules + scripts/init
# Env: LAB_DIR, KV (kernel version, default: what linux-image-amd64 depends on), LAB_FORCE=1 (redo all).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=${LAB_DIR:-$HERE/cache}
mkdir -p "$LAB"
LAB=$(cd "$LAB" && pwd)
export DEBIAN_FRONTEND=noninteractive
step() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
T0=$(date +%s)
[ "${LAB_FORCE:-0}" = 1 ] && rm -rf "$LAB/kernel" "$LAB/qemu10" "$LAB/initramfs.cpio.gz" "$LAB"/vmlinux-*

step "apt-get update"
apt-get update -qq
KV=${KV:-$(apt-cache depends linux-image-amd64 2>/dev/null \
    | sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -1)}
[ -n "$KV" ] || { echo "setup: cannot tell which kernel linux-image-amd64 depends on (set KV=)" >&2; exit 1; }
step "kernel version $KV"

need=()
for p in qemu-system-x86 busybox-static cpio kmod bc gcc make python3 xz-utils "linux-headers-$KV"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    step "apt-get install ${need[*]}"
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$LAB/dl"
cd "$LAB/dl"

# 1. The Debian kernel and its modules, unpacked into $LAB/kernel (never installed on the host).
if [ ! -d "$LAB/kernel/lib/modules/$KV" ] || [ ! -f "$LAB/vmlinux-$KV" ]; then
    ls linux-image-"${KV}"_*.deb >/dev/null 2>&1 || { step "download linux-image-$KV"; apt-get -o APT::Sandbox::User=root download -q "linux-image-$KV"; }
    step "unpack kernel"
    rm -rf "$LAB/kernel"; mkdir -p "$LAB/kernel"
    dpkg -x linux-image-"${KV}"_*.deb "$LAB/kernel"
    python3 "$HERE/scripts/extract-vmlinux.py" "$LAB/kernel/boot/vmlinuz-$KV" "$LAB/vmlinux-$KV"
fi

# 2. netdevsim: Debian does not build it (CONFIG_NETDEVSIM unset), so compile it out of tree from the
#    matching linux-source package against the installed headers.
NDS=$LAB/kernel/lib/modules/$KV/updates/netdevsim.ko
if [ ! -f "$NDS" ]; then
    SRCVER=$(dpkg-query -W -f='${Version}' "linux-headers-$KV")
    SRCPKG=linux-source-$(echo "$KV" | cut -d. -f1-2)
    ls "${SRCPKG}_${SRCVER}"_all.deb >/dev/null 2>&1 || { step "download $SRCPKG=$SRCVER"; apt-get -o APT::Sandbox::User=root download -q "$SRCPKG=$SRCVER"; }
    step "build netdevsim.ko"
    rm -rf "$LAB/netdevsim-build"; mkdir -p "$LAB/netdevsim-build"
    dpkg-deb --fsys-tarfile "${SRCPKG}_${SRCVER}"_all.deb | tar -xO "./usr/src/$SRCPKG.tar.xz" \
        | tar -xJ -C "$LAB/netdevsim-build" --strip-components=4 --wildcards "$SRCPKG/drivers/net/netdevsim/*"
    make -s -C "/usr/src/linux-headers-$KV" M="$LAB/netdevsim-build" CONFIG_NETDEVSIM=m modules -j"$(nproc)"
    mkdir -p "$(dirname "$NDS")"
    strip --strip-debug -o "$NDS" "$LAB/netdevsim-build/netdevsim.ko"
    depmod -b "$LAB/kernel" "$KV"
fi

# 3. QEMU 10 from bookworm-backports, unpacked; it runs on bookworm's shared libraries.
if [ ! -x "$LAB/qemu10/usr/bin/qemu-system-x86_64" ]; then
    B=$LAB/apt-bpo
    mkdir -p "$B/lists/partial" "$B/cache/archives/partial" "$B/debs"
    MIRROR=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 || true)
    [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $0 ~ /bookworm[[:space:]]/ {
        for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$MIRROR" ] || { echo "setup: no Debian mirror in the apt sources" >&2; exit 1; }
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-backports main" \
        > "$B/sources.list"
    APTO=(-o "Dir::Etc::SourceList=$B/sources.list" -o Dir::Etc::SourceParts=/nonexistent
          -o "Dir::State::Lists=$B/lists" -o "Dir::Cache=$B/cache")
    step "bookworm-backports: QEMU 10"
    apt-get "${APTO[@]}" update -qq
    (cd "$B/debs" && apt-get "${APTO[@]}" -o APT::Sandbox::User=root download -q qemu-system-x86 qemu-system-data qemu-system-common seabios)
    rm -rf "$LAB/qemu10"; mkdir -p "$LAB/qemu10"
    for d in "$B"/debs/*.deb; do dpkg -x "$d" "$LAB/qemu10"; done
fi
"$LAB/qemu10/usr/bin/qemu-system-x86_64" --version | head -1

# 4. The initramfs (rebuilt when scripts/init is newer than it).
if [ ! -f "$LAB/initramfs.cpio.gz" ] || [ "$HERE/scripts/init" -nt "$LAB/initramfs.cpio.gz" ]; then
    step "build initramfs"
    KV=$KV LAB_DIR=$LAB "$HERE/scripts/build-initramfs.sh"
fi
step "done in $(( $(date +%s) - T0 )) s; try: LAB_DIR=$LAB $HERE/run-in-vm.sh 'uname -r'"
