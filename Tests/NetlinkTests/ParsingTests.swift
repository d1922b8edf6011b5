import Testing

@testable import HostSimulator
@testable import Netlink

@Suite struct ParsingTests {
    /// An RTM_NEWLINK for eth0 with one VF, written out by hand. It has an unknown top-level attribute, an
    /// unknown VF attribute with a length that needs padding, NLA_F_NESTED on the nests, spoofchk "not
    /// reported" (~0) and an 802.1ad VLAN in IFLA_VF_VLAN_LIST.
    static let oneVFReply = hex(
        """
        ec 00 00 00 | 10 00 | 00 00 | 01 00 00 00 | 00 00 00 00
        00 00 01 00 | 02 00 00 00 | 43 10 01 00 | 00 00 00 00
        09 00 03 00 | 65 74 68 30 00 00 00 00
        08 00 04 00 | dc 05 00 00
        05 00 10 00 | 06 00 00 00
        0a 00 01 00 | 52 54 00 12 34 56 00 00
        08 00 7f 00 | de ad be ef
        08 00 15 00 | 01 00 00 00
        94 00 16 80
          90 00 01 80
            28 00 01 00 | 00 00 00 00 | 02 00 00 00 00 07 00 00 00 00 00 00 00 00 00 00
                                        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            10 00 02 00 | 00 00 00 00 | 14 00 00 00 | 05 00 00 00
            10 00 06 00 | 00 00 00 00 | 00 00 00 00 | 64 00 00 00
            0c 00 04 00 | 00 00 00 00 | ff ff ff ff
            0c 00 05 00 | 00 00 00 00 | 02 00 00 00
            06 00 63 00 | aa bb 00 00
            0c 00 09 00 | 00 00 00 00 | 01 00 00 00
            18 00 0c 00 | 14 00 01 00 | 00 00 00 00 | 14 00 00 00 | 05 00 00 00 | 88 a8 00 00
        """)

    @Test func parsesHandWrittenLinkReply() throws {
        #expect(Self.oneVFReply.count == 0xec)
        let replies = try RTNetlinkCodec.parse(Self.oneVFReply)
        let expected = LinkInfo(
            index: 2, name: "eth0", mtu: 1500, operState: 6, address: [0x52, 0x54, 0, 0x12, 0x34, 0x56], numVFs: 1,
            vfs: [
                VFLinkInfo(
                    index: 0, mac: [2, 0, 0, 0, 0, 7], vlan: 20, qos: 5, vlanProtocol: .ieee8021AD, spoofCheck: nil,
                    trust: true, linkState: .disable, minTxRate: 0, maxTxRate: 100)
            ])
        #expect(replies == [.link(expected)])
        #expect(expected.vfs[0].macString == "02:00:00:00:00:07")
    }

    @Test func ackAndErrors() throws {
        // ack: error 0 + the echoed request header (capped)
        let ack = hex(
            "24 00 00 00 02 00 00 01 05 00 00 00 00 00 00 00 | 00 00 00 00 | 20 00 00 00 10 00 05 00 05 00 00 00 00 00 00 00"
        )
        #expect(try RTNetlinkCodec.parse(ack) == [.ack])
        // -EOPNOTSUPP with the whole 20-byte request echoed (not capped) and an extended-ack message "no"
        let error = hex(
            """
            30 00 00 00 02 00 00 02 05 00 00 00 00 00 00 00 | a1 ff ff ff
            14 00 00 00 10 00 05 00 05 00 00 00 00 00 00 00 | 01 02 03 04
            07 00 01 00 6e 6f 00 00
            """)
        let replies = try RTNetlinkCodec.parse(error)
        #expect(replies == [.error(NetlinkError(errno: 95, context: "no"))])
        if case .error(let failure) = replies.first {
            #expect(failure.name == "EOPNOTSUPP")
            #expect(failure.description == "no: EOPNOTSUPP")
        }
        #expect(NetlinkError(errno: 93).name == "EPROTONOSUPPORT")
        #expect(NetlinkError(errno: 22).name == "EINVAL")
        #expect(NetlinkError(errno: 4242).name == "E4242")
    }

    @Test func multipartDump() throws {
        var link = Array(Self.oneVFReply)
        link[6] = 0x02  // NLM_F_MULTI
        let done = hex("14 00 00 00 03 00 02 00 01 00 00 00 00 00 00 00 00 00 00 00")
        let failedDone = hex("14 00 00 00 03 00 02 00 01 00 00 00 00 00 00 00 f0 ff ff ff")
        let replies = try RTNetlinkCodec.parse(link + link + done)
        #expect(replies.count == 3)
        #expect(replies.last == .done)
        #expect(try RTNetlinkCodec.parse(failedDone) == [.error(NetlinkError(errno: 16, context: "dump"))])
        #expect(try RTNetlinkCodec.parse(hex("10 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00")) == [.other(type: 1)])
    }

    @Test func rejectsMalformedFraming() {
        #expect(throws: NetlinkError.self) { try RTNetlinkCodec.parse(Array(Self.oneVFReply.dropLast())) }
        #expect(throws: NetlinkError.self) {
            try RTNetlinkCodec.parse([0x0f, 0, 0, 0] + Array(repeating: 0, count: 12))
        }
        #expect(throws: NetlinkError.self) { try RTNetlinkCodec.parse(Self.oneVFReply + [1, 2, 3]) }
        var badAttribute = Self.oneVFReply
        badAttribute[32] = 0x02  // IFLA_IFNAME with nla_len 2 < 4
        #expect(throws: NetlinkError.self) { try RTNetlinkCodec.parse(badAttribute) }
        do {
            _ = try RTNetlinkCodec.parse([1, 2, 3])
        } catch {
            #expect(error.errno == 74)
            #expect(error.name == "EBADMSG")
        }
    }

    /// 256 VFs with statistics: the reply passes 64 KiB and the list's 16-bit nla_len wraps, as the kernel's
    /// nla_nest_end lets it. The parser walks IFLA_NUM_VF entries to find the true end, then reads on.
    @Test func replyOver64KiBWithWrappedListLength() throws {
        let host = SimulatedHost(igbVFs: 2, iceVFs: 256)
        defer { host.remove() }
        try host.client.apply(.mac([2, 0, 0, 0, 0xff, 0xff]), vf: 255, interface: "ens1f0")
        try host.client.apply(.vlan(vlan: 99, qos: 1, proto: .ieee8021AD), vf: 128, interface: "ens1f0")
        let link = try #require(host.kernel.resolveLink(.name("ens1f0")))
        let request = NetlinkHeader(length: 0, type: 18, flags: 5, sequence: 3, portID: 0)
        var reply = host.kernel.makeLinkReply(link, extMask: ABI.RTEXT_FILTER_VF, to: request)
        #expect(reply.count > 65536)
        let listLength = Int(ByteReader(reply).u16(at: 32 + 16 + 8 + 8 + 12 + 8)!)
        #expect(listLength < 65536 && reply.count - (32 + 16 + 8 + 8 + 12 + 8) != listLength)
        // an attribute after the list must still be read: append IFLA_MTU 1234
        reply += hex("08 00 04 00 d2 04 00 00")
        ByteWriter.patchLength(&reply)
        guard case .link(let parsed) = try RTNetlinkCodec.parse(reply).first else {
            Issue.record("no link")
            return
        }
        #expect(parsed.vfs.count == 256)
        #expect(parsed.vfs.map(\.index) == Array(0..<256))
        #expect(parsed.vfs[255].mac == [2, 0, 0, 0, 0xff, 0xff])
        #expect(parsed.vfs[128].vlan == 99 && parsed.vfs[128].vlanProtocol == .ieee8021AD)
        #expect(parsed.mtu == 1234)
    }

    /// The client's own request (without statistics) for 256 VFs: about 50 KiB, list length intact.
    @Test func clientReadsLargePF() throws {
        let host = SimulatedHost(iceVFs: 256)
        defer { host.remove() }
        let vfs = try host.client.vfs(ofInterface: "ens1f0")
        #expect(vfs.count == 256)
        #expect(vfs.allSatisfy { $0.spoofCheck == true && $0.trust == false && $0.linkState == .auto })
    }
}

extension ByteWriter {
    /// Rewrites `nlmsg_len` of a single-message buffer after it was extended.
    static func patchLength(_ bytes: inout [UInt8]) {
        var writer = ByteWriter()
        writer.append(bytes)
        writer.patchU32(at: 0, UInt32(bytes.count))
        bytes = writer.bytes
    }
}
