import Glibc

/// What one reply message means to a client.
public enum NetlinkReply: Sendable, Hashable {
    /// An `RTM_NEWLINK` describing an interface.
    case link(LinkInfo)
    /// `NLMSG_ERROR` with error 0: the request succeeded.
    case ack
    /// `NLMSG_ERROR` (or `NLMSG_DONE`) with a negative error: the request failed.
    case error(NetlinkError)
    /// `NLMSG_DONE`: the end of a multipart reply.
    case done
    /// A message type this codec does not interpret.
    case other(type: UInt16)
}

/// Builds rtnetlink requests and reads replies, byte for byte as the kernel lays them out. Pure functions:
/// no sockets, no state. Multi-byte fields are in host order (little-endian here), except `vlan_proto`.
public enum RTNetlinkCodec {
    /// The extended filter mask sent with `RTM_GETLINK`: VF data, without per-VF statistics (the statistics
    /// would push the VF list of a PF with a few hundred VFs past the 64 KiB an attribute can describe).
    public static let defaultExtMask = ABI.RTEXT_FILTER_VF | ABI.RTEXT_FILTER_SKIP_STATS

    // MARK: Requests

    /// `RTM_GETLINK` for one interface, `NLM_F_REQUEST | NLM_F_ACK`, with `IFLA_EXT_MASK`. By name, the
    /// request carries `IFLA_IFNAME` and `ifi_index` 0, which the kernel resolves itself.
    public static func makeGetLink(
        _ link: LinkSelector, sequence: UInt32 = 0, extMask: UInt32 = defaultExtMask
    ) -> [UInt8] {
        makeLinkMessage(type: ABI.RTM_GETLINK, link: link, sequence: sequence) { writer in
            writer.attribute(ABI.IFLA_EXT_MASK, u32: extMask)
        }
    }

    /// `RTM_NEWLINK` on the PF, `NLM_F_REQUEST | NLM_F_ACK`, carrying `IFLA_VFINFO_LIST` → `IFLA_VF_INFO` →
    /// exactly one setting. Throws `EINVAL` for a VF number outside 0..<2³², a MAC longer than 32 bytes, or
    /// a QoS above 7 or VLAN above 4095 (the kernel would refuse them too).
    public static func makeSetVF(
        _ setting: VFSetting, vf: Int, on link: LinkSelector, sequence: UInt32 = 0
    ) throws(NetlinkError) -> [UInt8] {
        guard let vfNumber = UInt32(exactly: vf) else {
            throw NetlinkError(errno: EINVAL, context: "VF number \(vf) out of range")
        }
        var member = ByteWriter()
        switch setting {
        case .mac(let mac):
            guard mac.count <= ABI.vfMACBytes else {
                throw NetlinkError(errno: EINVAL, context: "MAC of \(mac.count) bytes")
            }
            member.u32(vfNumber)
            member.append(mac)
            member.zeros(ABI.vfMACBytes - mac.count)
            return wrap(ABI.IFLA_VF_MAC, member.bytes, link: link, sequence: sequence)
        case .vlan(let vlan, let qos, let proto):
            member.u32(vfNumber)
            member.u32(UInt32(vlan))
            member.u32(UInt32(qos))
            if proto == .ieee8021Q {
                return wrap(ABI.IFLA_VF_VLAN, member.bytes, link: link, sequence: sequence)
            }
            member.be16(proto.rawValue)
            member.zeros(2)
            var list = ByteWriter()
            list.attribute(ABI.IFLA_VF_VLAN_INFO, member.bytes)
            return wrap(ABI.IFLA_VF_VLAN_LIST, list.bytes, link: link, sequence: sequence)
        case .rate(let min, let max):
            member.u32(vfNumber)
            member.u32(min)
            member.u32(max)
            return wrap(ABI.IFLA_VF_RATE, member.bytes, link: link, sequence: sequence)
        case .spoofCheck(let on):
            member.u32(vfNumber)
            member.u32(on ? 1 : 0)
            return wrap(ABI.IFLA_VF_SPOOFCHK, member.bytes, link: link, sequence: sequence)
        case .trust(let on):
            member.u32(vfNumber)
            member.u32(on ? 1 : 0)
            return wrap(ABI.IFLA_VF_TRUST, member.bytes, link: link, sequence: sequence)
        case .linkState(let state):
            member.u32(vfNumber)
            member.u32(state.rawValue)
            return wrap(ABI.IFLA_VF_LINK_STATE, member.bytes, link: link, sequence: sequence)
        }
    }

    private static func wrap(_ type: UInt16, _ member: [UInt8], link: LinkSelector, sequence: UInt32) -> [UInt8] {
        makeLinkMessage(type: ABI.RTM_NEWLINK, link: link, sequence: sequence) { writer in
            writer.nested(ABI.IFLA_VFINFO_LIST) { list in
                list.nested(ABI.IFLA_VF_INFO) { info in
                    info.attribute(type, member)
                }
            }
        }
    }

    /// `nlmsghdr` + `ifinfomsg` (family `AF_UNSPEC`, everything 0 but the index) + the link selector's
    /// `IFLA_IFNAME` + what `body` adds; `nlmsg_len` patched at the end.
    private static func makeLinkMessage(
        type: UInt16, link: LinkSelector, sequence: UInt32, body: (inout ByteWriter) -> Void
    ) -> [UInt8] {
        var writer = ByteWriter()
        NetlinkHeader(length: 0, type: type, flags: ABI.NLM_F_REQUEST | ABI.NLM_F_ACK, sequence: sequence, portID: 0)
            .write(to: &writer)
        var index: Int32 = 0
        if case .index(let value) = link { index = value }
        writer.u8(0)  // ifi_family = AF_UNSPEC
        writer.u8(0)  // __ifi_pad
        writer.u16(0)  // ifi_type
        writer.i32(index)
        writer.u32(0)  // ifi_flags
        writer.u32(0)  // ifi_change
        if case .name(let name) = link {
            writer.attribute(ABI.IFLA_IFNAME, string: name)
        }
        body(&writer)
        writer.patchU32(at: 0, UInt32(writer.count))
        return writer.bytes
    }

    // MARK: Replies

    /// Parses every message in `bytes` (one datagram, or several messages back to back). Never traps:
    /// anything that does not parse is a thrown `EBADMSG`. This is the fuzzing entry point.
    public static func parse(_ bytes: [UInt8]) throws(NetlinkError) -> [NetlinkReply] {
        var replies: [NetlinkReply] = []
        for message in try NetlinkMessage.split(bytes) {
            replies.append(try interpret(message))
        }
        return replies
    }

    /// The meaning of one message.
    public static func interpret(_ message: NetlinkMessage) throws(NetlinkError) -> NetlinkReply {
        switch message.header.type {
        case ABI.NLMSG_ERROR:
            let (errno, text) = try parseError(message)
            return errno == 0 ? .ack : .error(NetlinkError(errno: errno, context: text ?? ""))
        case ABI.NLMSG_DONE:
            // A dump's NLMSG_DONE carries an int: 0, or a negative errno if the dump failed midway.
            if let status = ByteReader(message.payload).i32(at: 0), status < 0, status != Int32.min {
                return .error(NetlinkError(errno: -status, context: "dump"))
            }
            return .done
        case ABI.RTM_NEWLINK:
            return .link(try parseLink(message.payload))
        default:
            return .other(type: message.header.type)
        }
    }

    /// `struct nlmsgerr { int error; struct nlmsghdr msg; }`, then the echoed request payload unless
    /// `NLM_F_CAPPED`, then extended-ack attributes if `NLM_F_ACK_TLVS`. Returns the positive errno and the
    /// kernel's `NLMSGERR_ATTR_MSG` text if present.
    static func parseError(_ message: NetlinkMessage) throws(NetlinkError) -> (Int32, String?) {
        let reader = ByteReader(message.payload)
        guard let error = reader.i32(at: 0), error <= 0, error != Int32.min else {
            throw .malformed("NLMSG_ERROR without a valid error code")
        }
        var text: String?
        if message.header.flags & ABI.NLM_F_ACK_TLVS != 0 {
            var offset = 4 + ABI.nlmsgHeaderSize
            if message.header.flags & ABI.NLM_F_CAPPED == 0, let echoed = reader.u32(at: 4) {
                offset = 4 + Int(echoed).netlinkAligned
            }
            if let tlvs = reader.slice(offset, reader.count - offset),
                let attributes = try? NetlinkAttribute.parse(tlvs),
                let msg = attributes.first(where: { $0.type == ABI.NLMSGERR_ATTR_MSG })
            {
                text = msg.string()
            }
        }
        return (-error, text)
    }

    /// `struct ifinfomsg` then the `IFLA_*` attributes. Unknown attributes are skipped.
    static func parseLink(_ payload: ArraySlice<UInt8>) throws(NetlinkError) -> LinkInfo {
        let reader = ByteReader(payload)
        guard let index = reader.i32(at: 4), let attributeBytes = reader.slice(16, reader.count - 16) else {
            throw .malformed("RTM_NEWLINK shorter than struct ifinfomsg")
        }
        var link = LinkInfo(index: index, name: "")
        var vfList: ArraySlice<UInt8>?
        for attribute in try parseLinkAttributes(attributeBytes) {
            switch attribute.type {
            case ABI.IFLA_IFNAME: link.name = attribute.string()
            case ABI.IFLA_MTU: link.mtu = attribute.u32()
            case ABI.IFLA_OPERSTATE: link.operState = attribute.u8()
            case ABI.IFLA_ADDRESS: link.address = Array(attribute.payload)
            case ABI.IFLA_NUM_VF: link.numVFs = attribute.u32().map(Int.init)
            case ABI.IFLA_VFINFO_LIST: vfList = attribute.payload
            default: break
            }
        }
        if let vfList {
            let macLength = link.address.map { $0.isEmpty ? 6 : min($0.count, ABI.vfMACBytes) } ?? 6
            link.vfs = try parseVFList(vfList, macLength: macLength)
        }
        return link
    }

    /// The top-level attributes of a link message. `IFLA_VFINFO_LIST` gets one repair: its 16-bit `nla_len`
    /// wraps when the list passes 64 KiB (the kernel's `nla_nest_end` truncates it). When `IFLA_NUM_VF`
    /// came first and walking that many `IFLA_VF_INFO` entries ends at a length equal to the written one
    /// modulo 65536, that walked length is used.
    static func parseLinkAttributes(_ bytes: ArraySlice<UInt8>) throws(NetlinkError) -> [NetlinkAttribute] {
        let reader = ByteReader(bytes)
        var attributes: [NetlinkAttribute] = []
        var numVFs: Int?
        var offset = 0
        while reader.count - offset >= ABI.nlaHeaderSize {
            guard let length = reader.u16(at: offset), let rawType = reader.u16(at: offset + 2) else { break }
            let type = rawType & ABI.NLA_TYPE_MASK
            var size = Int(length)
            if type == ABI.IFLA_VFINFO_LIST, let count = numVFs, count > 0,
                let end = endOfVFInfoEntries(reader, from: offset + ABI.nlaHeaderSize, count: count),
                end - offset > size, (end - offset) & 0xffff == size
            {
                size = end - offset
            }
            guard size >= ABI.nlaHeaderSize, let payload = reader.slice(offset + ABI.nlaHeaderSize, size - 4) else {
                throw .malformed("nla_len \(length) at offset \(offset) of \(reader.count) bytes")
            }
            let attribute = NetlinkAttribute(type: type, payload: payload, offset: offset, declaredLength: size)
            if type == ABI.IFLA_NUM_VF { numVFs = attribute.u32().map(Int.init) }
            attributes.append(attribute)
            offset += min(size.netlinkAligned, reader.count - offset)
        }
        return attributes
    }

    /// Where `count` consecutive, well-formed `IFLA_VF_INFO` attributes starting at `start` end; nil if they
    /// are not all there.
    private static func endOfVFInfoEntries(_ reader: ByteReader, from start: Int, count: Int) -> Int? {
        var offset = start
        for _ in 0..<count {
            guard let length = reader.u16(at: offset), let type = reader.u16(at: offset + 2),
                type & ABI.NLA_TYPE_MASK == ABI.IFLA_VF_INFO, length >= 4,
                reader.slice(offset, Int(length)) != nil
            else { return nil }
            offset += Int(length).netlinkAligned
        }
        return offset <= reader.count ? offset : nil
    }

    /// The members of `IFLA_VFINFO_LIST`. A member that is not `IFLA_VF_INFO` is skipped, as are attributes
    /// too short for their struct.
    static func parseVFList(_ bytes: ArraySlice<UInt8>, macLength: Int) throws(NetlinkError) -> [VFLinkInfo] {
        var vfs: [VFLinkInfo] = []
        for entry in try NetlinkAttribute.parse(bytes) where entry.type == ABI.IFLA_VF_INFO {
            vfs.append(try parseVFInfo(entry.payload, fallbackIndex: vfs.count, macLength: macLength))
        }
        return vfs
    }

    private static func parseVFInfo(
        _ bytes: ArraySlice<UInt8>, fallbackIndex: Int, macLength: Int
    ) throws(NetlinkError) -> VFLinkInfo {
        var vf = VFLinkInfo(index: fallbackIndex)
        var index: UInt32?
        var sawRate = false
        /// `~0U` is how rtnetlink says "the driver did not report this".
        func flag(_ value: UInt32) -> Bool? { value == UInt32.max ? nil : value != 0 }
        for attribute in try NetlinkAttribute.parse(bytes) {
            let r = attribute.reader
            switch attribute.type {
            case ABI.IFLA_VF_MAC:
                guard let number = r.u32(at: 0), let mac = r.slice(4, macLength) else { continue }
                index = index ?? number
                vf.mac = Array(mac)
            case ABI.IFLA_VF_VLAN:
                guard let number = r.u32(at: 0), let vlan = r.u32(at: 4), let qos = r.u32(at: 8) else { continue }
                index = index ?? number
                vf.vlan = UInt16(truncatingIfNeeded: vlan)
                vf.qos = UInt8(truncatingIfNeeded: qos)
            case ABI.IFLA_VF_VLAN_LIST:
                guard let members = try? attribute.nested(),
                    let info = members.first(where: { $0.type == ABI.IFLA_VF_VLAN_INFO }),
                    let vlan = info.reader.u32(at: 4), let qos = info.reader.u32(at: 8),
                    let proto = info.reader.be16(at: 12)
                else { continue }
                vf.vlan = UInt16(truncatingIfNeeded: vlan)
                vf.qos = UInt8(truncatingIfNeeded: qos)
                vf.vlanProtocol = VLANProtocol(rawValue: proto)
            case ABI.IFLA_VF_RATE:
                guard let min = r.u32(at: 4), let max = r.u32(at: 8) else { continue }
                sawRate = true
                vf.minTxRate = min
                vf.maxTxRate = max
            case ABI.IFLA_VF_TX_RATE:
                guard let rate = r.u32(at: 4), !sawRate else { continue }
                vf.maxTxRate = rate
            case ABI.IFLA_VF_SPOOFCHK:
                guard let value = r.u32(at: 4) else { continue }
                vf.spoofCheck = flag(value)
            case ABI.IFLA_VF_TRUST:
                guard let value = r.u32(at: 4) else { continue }
                vf.trust = flag(value)
            case ABI.IFLA_VF_LINK_STATE:
                guard let value = r.u32(at: 4) else { continue }
                vf.linkState = VFLinkState(rawValue: value)
            case ABI.IFLA_VF_STATS:
                guard let members = try? attribute.nested() else { continue }
                vf.stats = parseVFStats(members)
            default:
                continue
            }
        }
        if let index, let number = Int(exactly: index) { vf.index = number }
        return vf
    }

    /// The members of `IFLA_VF_STATS`: each a u64 in host order; one too short, or of a type this code does not
    /// know, is left out (nil).
    static func parseVFStats(_ members: [NetlinkAttribute]) -> VFStats {
        var stats = VFStats()
        for member in members {
            guard let value = member.reader.u64(at: 0) else { continue }
            switch member.type {
            case ABI.IFLA_VF_STATS_RX_PACKETS: stats.rxPackets = value
            case ABI.IFLA_VF_STATS_TX_PACKETS: stats.txPackets = value
            case ABI.IFLA_VF_STATS_RX_BYTES: stats.rxBytes = value
            case ABI.IFLA_VF_STATS_TX_BYTES: stats.txBytes = value
            case ABI.IFLA_VF_STATS_BROADCAST: stats.broadcast = value
            case ABI.IFLA_VF_STATS_MULTICAST: stats.multicast = value
            case ABI.IFLA_VF_STATS_RX_DROPPED: stats.rxDropped = value
            case ABI.IFLA_VF_STATS_TX_DROPPED: stats.txDropped = value
            default: continue
            }
        }
        return stats
    }
}
