/// `struct nlmsghdr`: the 16-byte header in front of every netlink message.
public struct NetlinkHeader: Sendable, Hashable {
    /// `nlmsg_len`: header plus payload, before alignment padding.
    public var length: UInt32
    /// `nlmsg_type`: `NLMSG_ERROR`, `NLMSG_DONE`, `RTM_NEWLINK`, ...
    public var type: UInt16
    /// `nlmsg_flags`: `NLM_F_REQUEST`, `NLM_F_MULTI`, `NLM_F_ACK`, ...
    public var flags: UInt16
    /// `nlmsg_seq`: the request's sequence number, echoed in its replies.
    public var sequence: UInt32
    /// `nlmsg_pid`: the sender's port id (0 for the kernel).
    public var portID: UInt32

    public init(length: UInt32, type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
    }

    package func write(to writer: inout ByteWriter) {
        writer.u32(length)
        writer.u16(type)
        writer.u16(flags)
        writer.u32(sequence)
        writer.u32(portID)
    }
}

/// One netlink message: its header and the payload bytes after it (without trailing padding).
public struct NetlinkMessage: Sendable, Hashable {
    public var header: NetlinkHeader
    public var payload: ArraySlice<UInt8>

    /// Splits a datagram into its messages. Every `nlmsg_len` is checked against the bytes present; a message
    /// that claims more than is there, or a header shorter than 16 bytes, is `EBADMSG`.
    public static func split(_ bytes: [UInt8]) throws(NetlinkError) -> [NetlinkMessage] {
        try split(bytes[...])
    }

    static func split(_ bytes: ArraySlice<UInt8>) throws(NetlinkError) -> [NetlinkMessage] {
        let reader = ByteReader(bytes)
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset < reader.count {
            guard let length = reader.u32(at: offset), let type = reader.u16(at: offset + 4),
                let flags = reader.u16(at: offset + 6), let sequence = reader.u32(at: offset + 8),
                let portID = reader.u32(at: offset + 12)
            else {
                throw .malformed("\(reader.count - offset) trailing bytes are not a message header")
            }
            let size = Int(length)
            guard size >= ABI.nlmsgHeaderSize, let body = reader.slice(offset, size) else {
                throw .malformed("nlmsg_len \(length) at offset \(offset) of \(reader.count) bytes")
            }
            let header = NetlinkHeader(length: length, type: type, flags: flags, sequence: sequence, portID: portID)
            messages.append(NetlinkMessage(header: header, payload: body.dropFirst(ABI.nlmsgHeaderSize)))
            offset += min(size.netlinkAligned, reader.count - offset)
        }
        return messages
    }
}

/// One attribute (`struct nlattr`): its type with the `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits removed,
/// and its payload without padding.
package struct NetlinkAttribute {
    package var type: UInt16
    package var payload: ArraySlice<UInt8>
    /// Offset of the attribute's header within the slice it was parsed from.
    package var offset: Int
    /// The `nla_len` as written.
    package var declaredLength: Int

    package var reader: ByteReader { ByteReader(payload) }

    package func u32() -> UInt32? { reader.u32(at: 0) }

    package func u8() -> UInt8? { reader.u8(at: 0) }

    /// A string attribute up to its first NUL.
    package func string() -> String {
        let bytes = payload.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    package func nested() throws(NetlinkError) -> [NetlinkAttribute] {
        try NetlinkAttribute.parse(payload)
    }

    /// Parses a run of attributes. Unknown types are kept for the caller to ignore; an attribute shorter than
    /// its header or longer than the bytes left is `EBADMSG`. Trailing bytes too few for a header (at most 3)
    /// are tolerated as padding, as the kernel's `nla_for_each_attr` does.
    package static func parse(_ bytes: ArraySlice<UInt8>) throws(NetlinkError) -> [NetlinkAttribute] {
        let reader = ByteReader(bytes)
        var attributes: [NetlinkAttribute] = []
        var offset = 0
        while reader.count - offset >= ABI.nlaHeaderSize {
            guard let length = reader.u16(at: offset), let rawType = reader.u16(at: offset + 2) else { break }
            let size = Int(length)
            guard size >= ABI.nlaHeaderSize, let payload = reader.slice(offset + ABI.nlaHeaderSize, size - 4) else {
                throw .malformed("nla_len \(length) at offset \(offset) of \(reader.count) bytes")
            }
            attributes.append(
                NetlinkAttribute(
                    type: rawType & ABI.NLA_TYPE_MASK, payload: payload, offset: offset, declaredLength: size))
            offset += min(size.netlinkAligned, reader.count - offset)
        }
        return attributes
    }
}
