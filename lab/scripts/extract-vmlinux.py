#!/usr/bin/env python3
"""Pull the uncompressed ELF kernel out of an xz-compressed bzImage.

QEMU can boot an ELF vmlinux directly through its PVH entry point, which skips the in-guest
decompression (several seconds under TCG). usage: extract-vmlinux.py BZIMAGE OUT
"""
import lzma
import sys

XZ_MAGIC = b"\xfd7zXZ\x00"


def main(src: str, dst: str) -> int:
    blob = open(src, "rb").read()
    start = blob.find(XZ_MAGIC)
    while start >= 0:
        try:
            kernel = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(blob[start:])
        except lzma.LZMAError:
            kernel = b""
        if kernel.startswith(b"\x7fELF"):
            with open(dst, "wb") as out:
                out.write(kernel)
            print(f"extract-vmlinux: {len(kernel)} bytes (xz stream at offset {start})")
            return 0
        start = blob.find(XZ_MAGIC, start + 1)
    print("extract-vmlinux: no xz-compressed ELF in " + src, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
