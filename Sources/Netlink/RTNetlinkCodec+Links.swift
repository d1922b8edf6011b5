// swift-format-ignore-file: AlwaysUseLowerCamelCase
// The kernel's own names are kept so each constant can be found in the headers.

import Glibc

/// What one `RTM_NEWLINK` changes on an existing link. nil fields are left alone.
public struct LinkChange: Sendable, Hashable {
    /// `IFLA_NET_NS_FD`: move the link into the network namespace this descriptor refers to.
    public var namespaceFD: Int32?
    /// `IFLA_IFNAME`: the new name (applied in the target namespace when moving).
    public var name: String?
    /// `IFLA_MTU`.
    public var mtu: UInt32?
    /// `IFLA_ADDRESS`: the hardware address.
    public var address: [UInt8]?
    /// `IFF_UP` in `ifi_flags`, with `ifi_change` covering it.
    public var up: Bool?

    public init(
        namespaceFD: Int32? = nil, name: String? = nil, mtu: UInt32? = nil, address: [UInt8]? = nil, up: Bool? = nil
    ) {
        self.namespaceFD = namespaceFD
        self.name = name
        self.mtu = mtu
        self.address = address
        self.up = up
    }
}

/// Link, address and route requests: what a CNI plugin does to a netdev it moves into a namespace.
extension RTNetlinkCodec {
    static let RTM_NEWADDR: UInt16 = 20
    static let RTM_GETADDR: UInt16 = 22
    static let RTM_NEWROUTE: UInt16 = 24
    static let NLM_F_CREATE: UInt16 = 0x400
    static let NLM_F_EXCL: UInt16 = 0x200
    static let NLM_F_DUMP: UInt16 = 0x300
    static let IFLA_NET_NS_FD: UInt16 = 28
    static let IFA_ADDRESS: UInt16 = 1
    static let IFA_LOCAL: UInt16 = 2
    static let RTA_DST: UInt16 = 1
    static let RTA_OIF: UInt16 = 4
    static let RTA_GATEWAY: UInt16 = 5
    static let RT_TABLE_MAIN: UInt8 = 254
    static let RTPROT_BOOT: UInt8 = 3
    static let RT_SCOPE_UNIVERSE: UInt8 = 0
    static let RT_SCOPE_LINK: UInt8 = 253
    static let RTN_UNICAST: UInt8 = 1
    static let IFF_UP: UInt32 = 1

    /// `RTM_NEWLINK` on link `index` making `change`: `ip link set dev X [netns N] [name Y] [mtu M] [address A]
    /// [up|down]` in one request. Moving and renaming together renames in the target namespace.
    public static func makeSetLink(index: Int32, _ change: LinkChange, sequence: UInt32 = 0) -> [UInt8] {
        var writer = ByteWriter()
        NetlinkHeader(
            length: 0, type: ABI.RTM_NEWLINK, flags: ABI.NLM_F_REQUEST | ABI.NLM_F_ACK, sequence: sequence, portID: 0
        ).write(to: &writer)
        writer.u8(0)  // ifi_family = AF_UNSPEC
        writer.u8(0)
        writer.u16(0)
        writer.i32(index)
        writer.u32(change.up == true ? IFF_UP : 0)  // ifi_flags
        writer.u32(change.up == nil ? 0 : IFF_UP)  // ifi_change
        if let fd = change.namespaceFD { writer.attribute(IFLA_NET_NS_FD, u32: UInt32(bitPattern: fd)) }
        if let name = change.name { writer.attribute(ABI.IFLA_IFNAME, string: name) }
        if let mtu = change.mtu { writer.attribute(ABI.IFLA_MTU, u32: mtu) }
        if let address = change.address { writer.attribute(ABI.IFLA_ADDRESS, address) }
        writer.patchU32(at: 0, UInt32(writer.count))
        return writer.bytes
    }

    /// `RTM_NEWADDR` (`NLM_F_CREATE | NLM_F_EXCL`): `ip addr add ADDRESS/PREFIX dev INDEX`.
    public static func makeNewAddress(index: Int32, address: [UInt8], prefixLength: UInt8, sequence: UInt32 = 0)
        -> [UInt8]
    {
        var writer = ByteWriter()
        let flags = ABI.NLM_F_REQUEST | ABI.NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        NetlinkHeader(length: 0, type: RTM_NEWADDR, flags: flags, sequence: sequence, portID: 0).write(to: &writer)
        writer.u8(address.count == 16 ? UInt8(AF_INET6) : UInt8(AF_INET))  // ifa_family
        writer.u8(prefixLength)  // ifa_prefixlen
        writer.u8(0)  // ifa_flags
        writer.u8(RT_SCOPE_UNIVERSE)  // ifa_scope
        writer.u32(UInt32(bitPattern: index))  // ifa_index
        writer.attribute(IFA_LOCAL, address)
        writer.attribute(IFA_ADDRESS, address)
        writer.patchU32(at: 0, UInt32(writer.count))
        return writer.bytes
    }

    /// `RTM_GETADDR` dump of one family (the kernel answers every link's addresses; filter by `ifa_index`).
    public static func makeGetAddresses(family: UInt8, sequence: UInt32 = 0) -> [UInt8] {
        var writer = ByteWriter()
        NetlinkHeader(
            length: 0, type: RTM_GETADDR, flags: ABI.NLM_F_REQUEST | NLM_F_DUMP, sequence: sequence, portID: 0
        ).write(to: &writer)
        writer.u8(family)
        writer.zeros(7)
        writer.patchU32(at: 0, UInt32(writer.count))
        return writer.bytes
    }

    /// The addresses (`IFA_ADDRESS`, prefix length) of link `index` in an `RTM_GETADDR` dump's replies.
    public static func addresses(in replies: [[UInt8]], index: Int32) throws(NetlinkError) -> [([UInt8], UInt8)] {
        var found: [([UInt8], UInt8)] = []
        for bytes in replies {
            for message in try NetlinkMessage.split(bytes) where message.header.type == RTM_NEWADDR {
                let reader = ByteReader(message.payload)
                guard let prefix = reader.u8(at: 1), let owner = reader.u32(at: 4),
                    Int32(bitPattern: owner) == index, let rest = reader.slice(8, reader.count - 8)
                else { continue }
                for attribute in try NetlinkAttribute.parse(rest) where attribute.type == IFA_ADDRESS {
                    found.append((Array(attribute.payload), prefix))
                }
            }
        }
        return found
    }

    /// `RTM_NEWROUTE` in the main table (`NLM_F_CREATE | NLM_F_EXCL`): `ip route add DST/LEN [via GW] dev INDEX`;
    /// a route without a gateway has link scope.
    public static func makeNewRoute(
        index: Int32, destination: [UInt8], prefixLength: UInt8, gateway: [UInt8]?, sequence: UInt32 = 0
    ) -> [UInt8] {
        var writer = ByteWriter()
        let flags = ABI.NLM_F_REQUEST | ABI.NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        NetlinkHeader(length: 0, type: RTM_NEWROUTE, flags: flags, sequence: sequence, portID: 0).write(to: &writer)
        writer.u8(destination.count == 16 ? UInt8(AF_INET6) : UInt8(AF_INET))  // rtm_family
        writer.u8(prefixLength)  // rtm_dst_len
        writer.u8(0)  // rtm_src_len
        writer.u8(0)  // rtm_tos
        writer.u8(RT_TABLE_MAIN)  // rtm_table
        writer.u8(RTPROT_BOOT)  // rtm_protocol
        writer.u8(gateway == nil ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE)  // rtm_scope
        writer.u8(RTN_UNICAST)  // rtm_type
        writer.u32(0)  // rtm_flags
        if prefixLength > 0 { writer.attribute(RTA_DST, destination) }
        if let gateway { writer.attribute(RTA_GATEWAY, gateway) }
        writer.attribute(RTA_OIF, u32: UInt32(bitPattern: index))
        writer.patchU32(at: 0, UInt32(writer.count))
        return writer.bytes
    }
}

extension RTNetlinkClient {
    /// The link as the kernel reports it, without VF data or statistics. A missing link is `ENODEV`.
    public func basicLink(_ selector: LinkSelector) throws(NetlinkError) -> LinkInfo {
        for reply in try perform(RTNetlinkCodec.makeGetLink(selector, extMask: ABI.RTEXT_FILTER_SKIP_STATS)) {
            if case .link(let link) = reply { return link }
        }
        throw NetlinkError(errno: EBADMSG, context: "RTM_GETLINK answered without RTM_NEWLINK")
    }

    /// Applies `change` to link `index` and waits for the ack.
    public func setLink(index: Int32, _ change: LinkChange) throws(NetlinkError) {
        try expectAck(RTNetlinkCodec.makeSetLink(index: index, change), "RTM_NEWLINK")
    }

    /// Adds an address to link `index`.
    public func addAddress(index: Int32, address: [UInt8], prefixLength: UInt8) throws(NetlinkError) {
        try expectAck(
            RTNetlinkCodec.makeNewAddress(index: index, address: address, prefixLength: prefixLength), "RTM_NEWADDR")
    }

    /// The addresses of link `index` in one family (`AF_INET` or `AF_INET6`).
    public func addresses(index: Int32, family: Int32) throws(NetlinkError) -> [([UInt8], UInt8)] {
        let replies = try transport.request(RTNetlinkCodec.makeGetAddresses(family: UInt8(family)))
        for bytes in replies {
            for message in try NetlinkMessage.split(bytes) {
                if case .error(let error) = try RTNetlinkCodec.interpret(message) { throw error }
            }
        }
        return try RTNetlinkCodec.addresses(in: replies, index: index)
    }

    /// Adds a route through link `index`.
    public func addRoute(index: Int32, destination: [UInt8], prefixLength: UInt8, gateway: [UInt8]?)
        throws(NetlinkError)
    {
        try expectAck(
            RTNetlinkCodec.makeNewRoute(
                index: index, destination: destination, prefixLength: prefixLength, gateway: gateway),
            "RTM_NEWROUTE")
    }

    /// Sends a request and interprets every reply, throwing the first kernel error.
    public func perform(_ request: [UInt8]) throws(NetlinkError) -> [NetlinkReply] {
        var replies: [NetlinkReply] = []
        for bytes in try transport.request(request) {
            for message in try NetlinkMessage.split(bytes) {
                let reply = try RTNetlinkCodec.interpret(message)
                if case .error(let error) = reply { throw error }
                replies.append(reply)
            }
        }
        return replies
    }

    private func expectAck(_ request: [UInt8], _ what: String) throws(NetlinkError) {
        guard try perform(request).contains(.ack) else {
            throw NetlinkError(errno: EBADMSG, context: "\(what) answered without an ack")
        }
    }
}
