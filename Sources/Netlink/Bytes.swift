/// Appends host-endian integers and netlink attributes to a byte buffer.
package struct ByteWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    package var count: Int { bytes.count }

    package mutating func u8(_ value: UInt8) { bytes.append(value) }

    package mutating func u16(_ value: UInt16) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }

    package mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A 16-bit value in network byte order (`__be16`).
    package mutating func be16(_ value: UInt16) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    package mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    package mutating func padToAlignment() { zeros(bytes.count.netlinkAligned - bytes.count) }

    package mutating func patchU32(at offset: Int, _ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (i, byte) in raw.enumerated() { bytes[offset + i] = byte }
        }
    }

    package mutating func patchU16(at offset: Int, _ value: UInt16) {
        bytes[offset] = UInt8(truncatingIfNeeded: value)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }

    /// One attribute: `nla_len` (header + payload, before padding), `nla_type`, payload, pad to 4.
    package mutating func attribute(_ type: UInt16, _ payload: [UInt8]) {
        u16(UInt16(truncatingIfNeeded: ABI.nlaHeaderSize + payload.count))
        u16(type)
        append(payload)
        padToAlignment()
    }

    package mutating func attribute(_ type: UInt16, u32 value: UInt32) {
        var payload = ByteWriter()
        payload.u32(value)
        attribute(type, payload.bytes)
    }

    /// A NUL-terminated string attribute (`NLA_NUL_STRING`, as `IFLA_IFNAME`).
    package mutating func attribute(_ type: UInt16, string: String) {
        attribute(type, Array(string.utf8) + [0])
    }

    /// A nested attribute whose members `body` writes. Like the kernel's `nla_nest_end`, the 16-bit length
    /// silently wraps when the nest outgrows 64 KiB; readers that know the member count can recover.
    package mutating func nested(_ type: UInt16, _ body: (inout ByteWriter) -> Void) {
        let start = bytes.count
        u16(0)
        u16(type)
        body(&self)
        patchU16(at: start, UInt16(truncatingIfNeeded: bytes.count - start))
    }
}

/// Bounds-checked reads from a byte slice; every read returns nil instead of trapping past the end.
package struct ByteReader {
    package let bytes: ArraySlice<UInt8>

    package init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    package init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    package var count: Int { bytes.count }

    package func u8(at offset: Int) -> UInt8? {
        guard offset >= 0, offset < bytes.count else { return nil }
        return bytes[bytes.startIndex + offset]
    }

    package func u16(at offset: Int) -> UInt16? {
        guard offset >= 0, offset <= bytes.count - 2 else { return nil }
        let base = bytes.startIndex + offset
        return UInt16(bytes[base]) | UInt16(bytes[base + 1]) << 8
    }

    package func be16(at offset: Int) -> UInt16? {
        u16(at: offset).map { $0.byteSwapped }
    }

    package func u32(at offset: Int) -> UInt32? {
        guard offset >= 0, offset <= bytes.count - 4 else { return nil }
        let base = bytes.startIndex + offset
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[base + i]) << (8 * UInt32(i)) }
        return value
    }

    package func u64(at offset: Int) -> UInt64? {
        guard let low = u32(at: offset), let high = u32(at: offset + 4) else { return nil }
        return UInt64(low) | UInt64(high) << 32
    }

    package func i32(at offset: Int) -> Int32? { u32(at: offset).map { Int32(bitPattern: $0) } }

    package func slice(_ offset: Int, _ length: Int) -> ArraySlice<UInt8>? {
        guard offset >= 0, length >= 0, offset <= bytes.count, length <= bytes.count - offset else { return nil }
        let base = bytes.startIndex + offset
        return bytes[base..<(base + length)]
    }
}
