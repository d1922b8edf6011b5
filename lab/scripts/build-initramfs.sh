#!/bin/bash
# build-initramfs.sh - write $LAB_DIR/initramfs.cpio.gz: static busybox, the lab's /init and the
# modules needed to reach the host's root (virtio PCI, 9p over virtio, overlayfs).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=${LAB_DIR:?LAB_DIR must be set}
KV=${KV:-$(ls "$LAB/kernel/lib/modules" | head -1)}
MODS=$LAB/kernel/lib/modules/$KV
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,mods}
cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$HERE/init" "$root/init"
for rel in $("$HERE/moddeps.sh" "$MODS" virtio_pci 9pnet_virtio 9p overlay); do
    cp "$MODS/$rel" "$root/mods/"
    basename "$rel" >> "$root/mods/load-order"
done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$LAB/initramfs.cpio.gz"
echo "build-initramfs: $(stat -c %s "$LAB/initramfs.cpio.gz") bytes"
