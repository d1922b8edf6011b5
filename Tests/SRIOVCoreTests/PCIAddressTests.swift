import SRIOVCore
import Testing

@Suite struct PCIAddressTests {
    @Test(arguments: ["0000:02:00.0", "0000:3b:1f.7", "ffff:ff:1f.7", "0000:AF:00.1"])
    func acceptsCanonicalForm(_ text: String) throws {
        let address = try #require(PCIAddress(text))
        #expect(address.description == text.lowercased())
    }

    @Test(arguments: [
        "", "02:00.0", "0000:02:00", "0000:02:00.8", "0000:02:20.0", "0000:02:00.0 ", " 0000:02:00.0",
        "0000:02:00.00", "00000:02:00.0", "0000-02-00.0", "..", "../../etc", "0000:02:00.0/../x", "0000%3A02%3A00.0",
        "0000:0g:00.0", "0000:02:00.-", "0000:02:0.10", "0000:02:00.0\0",
    ])
    func rejectsEverythingElse(_ text: String) {
        #expect(PCIAddress(text) == nil)
    }

    @Test func advancesByRoutingID() throws {
        let pf = try #require(PCIAddress("0000:02:00.0"))
        #expect(pf.advanced(byRoutingIDs: 128)?.description == "0000:02:10.0")
        #expect(pf.advanced(byRoutingIDs: 130)?.description == "0000:02:10.2")
        #expect(pf.advanced(byRoutingIDs: 256)?.description == "0000:03:00.0")
    }

    @Test func ordersByDomainBusDeviceFunction() throws {
        let a = try #require(PCIAddress("0000:02:00.1"))
        let b = try #require(PCIAddress("0000:02:01.0"))
        #expect(a < b)
    }
}

@Suite struct VFConfigTests {
    @Test func acceptsAFullValidConfig() throws {
        let config = VFConfig(
            mac: "02:00:00:00:00:01", vlan: 100, qos: 3, vlanProto: .dot1Q, spoofCheck: true, trust: false,
            linkState: .auto, minTxRate: 0, maxTxRate: 1000)
        try config.validate()
    }

    @Test func namesTheBadField() {
        #expect(throws: SRIOVError.invalidField("config.vlan", "must be between 0 and 4095")) {
            try VFConfig(vlan: 4096).validate()
        }
        #expect(throws: SRIOVError.self) { try VFConfig(mac: "01:00:00:00:00:01").validate() }
        #expect(throws: SRIOVError.self) { try VFConfig(vlan: 1, qos: 8).validate() }
        #expect(throws: SRIOVError.self) { try VFConfig(minTxRate: 200, maxTxRate: 100).validate() }
    }
}

@Suite struct TimestampTests {
    @Test func formatsUTCWithMilliseconds() {
        #expect(Timestamp.format(seconds: 0, milliseconds: 5) == "1970-01-01T00:00:00.005Z")
        #expect(Timestamp.format(seconds: 1_795_000_000, milliseconds: 123) == "2026-11-18T11:06:40.123Z")
    }

    @Test func normalizesOffsetsAndFractions() {
        #expect(Timestamp.normalize("2026-11-25T10:00:00+01:00") == "2026-11-25T09:00:00.000Z")
        #expect(Timestamp.normalize("2026-11-25T09:00:00.5Z") == "2026-11-25T09:00:00.500Z")
        #expect(Timestamp.normalize("2026-11-25 09:00:00Z") == nil)
        #expect(Timestamp.normalize("yesterday") == nil)
        #expect(Timestamp.normalize("2026-13-25T09:00:00Z") == nil)
    }

    @Test func nowIsCanonical() {
        let now = Timestamp.now()
        #expect(Timestamp.normalize(now) == now)
    }
}
