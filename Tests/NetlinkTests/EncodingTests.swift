import Testing

@testable import Netlink

/// Requests compared byte for byte with layouts derived by hand from the kernel's structs:
/// nlmsghdr (16) | ifinfomsg (16) | attributes, each `len u16 | type u16 | payload | pad to 4`.
@Suite struct EncodingTests {
    static let newlinkHeaderAndIfinfo =
        "10 00 | 05 00 | 09 00 00 00 | 00 00 00 00 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    /// IFLA_IFNAME "eth0\0": nla_len 9, padded to 12.
    static let ifnameEth0 = "09 00 03 00 | 65 74 68 30 00 | 00 00 00"

    @Test func getLinkByName() {
        let expected = hex(
            """
            34 00 00 00 | 12 00 | 05 00 | 07 00 00 00 | 00 00 00 00
            00 00 00 00 | 00 00 00 00 | 00 00 00 00 | 00 00 00 00
            \(Self.ifnameEth0)
            08 00 1d 00 | 09 00 00 00
            """)
        #expect(RTNetlinkCodec.makeGetLink(.name("eth0"), sequence: 7) == expected)
    }

    @Test func getLinkByIndex() {
        let expected = hex(
            """
            28 00 00 00 | 12 00 | 05 00 | 01 00 00 00 | 00 00 00 00
            00 00 00 00 | 05 00 00 00 | 00 00 00 00 | 00 00 00 00
            08 00 1d 00 | 01 00 00 00
            """)
        #expect(RTNetlinkCodec.makeGetLink(.index(5), sequence: 1, extMask: 1) == expected)
    }

    /// nlmsghdr (len) + the fixed part + IFLA_IFNAME + `list` (IFLA_VFINFO_LIST ...).
    func newlink(length: UInt8, _ list: String) -> [UInt8] {
        hex("\(String(length, radix: 16)) 00 00 00 \(Self.newlinkHeaderAndIfinfo) \(Self.ifnameEth0) \(list)")
    }

    @Test func setMAC() throws {
        // list 48 = 4 + info 44 = 4 + IFLA_VF_MAC 40 = 4 + ifla_vf_mac 36 (vf u32, mac[32])
        let expected = newlink(
            length: 92,
            """
            30 00 16 00 | 2c 00 01 00 | 28 00 01 00 | 01 00 00 00
            02 11 22 33 44 55 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            """)
        let bytes = try RTNetlinkCodec.makeSetVF(
            .mac([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]), vf: 1, on: .name("eth0"), sequence: 9)
        #expect(bytes == expected)
    }

    @Test func setVLAN8021Q() throws {
        // IFLA_VF_VLAN (2): ifla_vf_vlan { vf 0, vlan 10, qos 3 }
        let expected = newlink(
            length: 68, "18 00 16 00 | 14 00 01 00 | 10 00 02 00 | 00 00 00 00 0a 00 00 00 03 00 00 00")
        let bytes = try RTNetlinkCodec.makeSetVF(.vlan(vlan: 10, qos: 3), vf: 0, on: .name("eth0"), sequence: 9)
        #expect(bytes == expected)
    }

    @Test func setVLAN8021AD() throws {
        // IFLA_VF_VLAN_LIST (12) > IFLA_VF_VLAN_INFO (1): { vf 2, vlan 20, qos 1, proto be16 0x88a8, pad 2 }
        let expected = newlink(
            length: 76,
            """
            20 00 16 00 | 1c 00 01 00 | 18 00 0c 00 | 14 00 01 00
            02 00 00 00 14 00 00 00 01 00 00 00 88 a8 00 00
            """)
        let setting = VFSetting.vlan(vlan: 20, qos: 1, proto: .ieee8021AD)
        #expect(try RTNetlinkCodec.makeSetVF(setting, vf: 2, on: .name("eth0"), sequence: 9) == expected)
    }

    @Test func setRate() throws {
        // IFLA_VF_RATE (6): ifla_vf_rate { vf 0, min 10, max 100 }
        let expected = newlink(
            length: 68, "18 00 16 00 | 14 00 01 00 | 10 00 06 00 | 00 00 00 00 0a 00 00 00 64 00 00 00")
        #expect(
            try RTNetlinkCodec.makeSetVF(.rate(min: 10, max: 100), vf: 0, on: .name("eth0"), sequence: 9) == expected)
    }

    @Test(arguments: [
        (VFSetting.spoofCheck(false), "04 00", "00 00 00 00"),
        (VFSetting.spoofCheck(true), "04 00", "01 00 00 00"),
        (VFSetting.trust(true), "09 00", "01 00 00 00"),
        (VFSetting.linkState(.auto), "05 00", "00 00 00 00"),
        (VFSetting.linkState(.enable), "05 00", "01 00 00 00"),
        (VFSetting.linkState(.disable), "05 00", "02 00 00 00"),
    ])
    func setPairSettings(setting: VFSetting, type: String, value: String) throws {
        // two-u32 structs: { vf 3, setting }
        let expected = newlink(length: 64, "14 00 16 00 | 10 00 01 00 | 0c 00 \(type) | 03 00 00 00 \(value)")
        #expect(try RTNetlinkCodec.makeSetVF(setting, vf: 3, on: .name("eth0"), sequence: 9) == expected)
    }

    @Test func byIndexCarriesNoName() throws {
        let bytes = try RTNetlinkCodec.makeSetVF(.trust(false), vf: 0, on: .index(4), sequence: 0)
        #expect(bytes.count == 16 + 16 + 20)
        #expect(ByteReader(bytes).i32(at: 20) == 4)
    }

    @Test func refusesWhatTheKernelWould() {
        #expect(throws: NetlinkError.self) { try RTNetlinkCodec.makeSetVF(.trust(true), vf: -1, on: .name("eth0")) }
        #expect(throws: NetlinkError.self) {
            try RTNetlinkCodec.makeSetVF(.mac(Array(repeating: 1, count: 33)), vf: 0, on: .name("eth0"))
        }
    }

    @Test func abiStructSizes() {
        #expect(ABI.vfMACSize == 4 + ABI.vfMACBytes)
        #expect(MemoryLayout<NetlinkAddress>.size == 12)
        #expect(RTNetlinkCodec.defaultExtMask == 9)
    }

    @Test func macText() {
        #expect(parseMAC("02:aa:0B:00:00:ff") == [2, 0xaa, 0x0b, 0, 0, 0xff])
        #expect(parseMAC("02-aa-0b-00-00-ff") == [2, 0xaa, 0x0b, 0, 0, 0xff])
        #expect(parseMAC("02:aa:0b:00:00") == nil)
        #expect(parseMAC("02:aa:0b:00:00:fff") == nil)
        #expect(parseMAC("zz:aa:0b:00:00:ff") == nil)
        #expect(formatMAC([2, 0xaa, 0x0b, 0, 0, 0xff]) == "02:aa:0b:00:00:ff")
    }
}
