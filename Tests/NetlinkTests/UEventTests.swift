import Foundation
import Testing

@testable import Netlink

@Suite struct UEventTests {
    static func bytes(_ fields: [String]) -> [UInt8] {
        fields.flatMap { Array($0.utf8) + [0] }
    }

    @Test func parsesAVFAppearing() throws {
        let devpath = "/devices/pci0000:00/0000:00:02.0/0000:02:10.0"
        let event = try #require(
            parseUEvent(
                Self.bytes([
                    "add@\(devpath)", "ACTION=add", "DEVPATH=\(devpath)", "SUBSYSTEM=pci",
                    "PCI_CLASS=20000", "PCI_ID=8086:10CA", "PCI_SLOT_NAME=0000:02:10.0",
                    "MODALIAS=pci:v00008086d000010CAsv00008086sd00000000bc02sc00i00", "SEQNUM=2105",
                ])))
        #expect(event.action == "add")
        #expect(event.devpath == devpath)
        #expect(event.subsystem == "pci")
        #expect(event.pciSlotName == "0000:02:10.0")
        #expect(event.sequenceNumber == 2105)
        #expect(event["PCI_ID"] == "8086:10CA")
        #expect(event["MODALIAS"]?.hasPrefix("pci:v00008086") == true)
    }

    @Test func parsesBindAndNetEvents() throws {
        let bind = try #require(
            parseUEvent(
                Self.bytes([
                    "bind@/devices/x/0000:02:10.0", "ACTION=bind", "DEVPATH=/devices/x/0000:02:10.0",
                    "SUBSYSTEM=pci", "DRIVER=vfio-pci", "SEQNUM=7",
                ])))
        #expect(bind.driver == "vfio-pci")
        let net = try #require(
            parseUEvent(Self.bytes(["move@/devices/x/net/ens1", "ACTION=move", "INTERFACE=ens1", "IFINDEX=4"])))
        #expect(net.interface == "ens1" && net.devpath == "/devices/x/net/ens1")
    }

    @Test func refusesWhatIsNotAKernelUEvent() {
        #expect(parseUEvent(Array("libudev".utf8) + [0, 0xfe, 0xed, 0xca, 0xfe]) == nil)
        #expect(parseUEvent([]) == nil)
        #expect(parseUEvent(Self.bytes(["ACTION=add"])) == nil)
        #expect(parseUEvent(Self.bytes(["@/devices/x"])) == nil)
        #expect(parseUEvent(Self.bytes(["add@relative"])) == nil)
        #expect(parseUEvent(Self.bytes(["add@/devices/x", "ACTION=remove"])) == nil)
        // a field without "=" is skipped, an empty value kept
        let event = parseUEvent(Self.bytes(["change@/devices/x", "NOEQUALS", "EMPTY="]))
        #expect(event?.properties == ["EMPTY": ""])
    }

    /// The monitor opens, reads nothing on a quiet machine, and stops promptly.
    @Test func monitorStartsAndStops() throws {
        let monitor = try UEventMonitor(onEvent: { _ in })
        let start = Date()
        monitor.stop()
        monitor.stop()
        #expect(Date().timeIntervalSince(start) < 2)
    }
}
