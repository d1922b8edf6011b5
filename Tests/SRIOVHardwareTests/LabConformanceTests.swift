import Foundation
import SRIOVCore
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

/// One sequence of writes and scans through `SRIOVWriter` and `HostScanner`, recorded once on Debian's 6.1 kernel in
/// the real-kernel lab (`Fixtures/lab-6.1-writer-transcript.txt`) and replayed here on a simulated host shaped like
/// the lab's: the simulation must give the same answers, line for line.
///
/// To record it again, build this sequence into an executable (`run(sysfs:settle:)` with `settle` sleeping 8 s for
/// nvme's asynchronous probe) and run it in the lab VM after `modprobe nvme igb igbvf vfio-pci`.
enum LabConformance {
    static let igb = PCIAddress("0000:02:00.0")!
    static let nvme = PCIAddress("0000:01:00.0")!
    static let igbVF0 = PCIAddress("0000:02:10.0")!
    static let nvmeVF0 = PCIAddress("0000:01:00.1")!

    /// The lab's two PFs (see /work/shared/lab/README.md).
    static let profiles: [SimulatedPFProfile] = [
        SimulatedPFProfile(
            address: nvme, rootComplex: "pci0000:00", bridge: PCIAddress("0000:00:04.0")!, vendor: "0x1b36",
            device: "0x0010", pciClass: "0x010802", driver: "nvme", totalVFs: 4, offset: 1, stride: 1,
            vfDevice: "0010", vfDriver: "nvme", vfProbeFails: true, interface: nil, mac: nil, speedMbps: nil,
            numaNode: -1, iommuGroup: 7, initialVFs: 0),
        SimulatedPFProfile(
            address: igb, rootComplex: "pci0000:00", bridge: PCIAddress("0000:00:05.0")!, vendor: "0x8086",
            device: "0x10c9", pciClass: "0x020000", driver: "igb", totalVFs: 7, offset: 128, stride: 2,
            vfDevice: "10ca", vfDriver: "igbvf", vfProbeFails: false, interface: "eth0", mac: "52:54:00:12:34:56",
            speedMbps: 1000, numaNode: -1, iommuGroup: 8, initialVFs: 0, deviceTotalVFs: 8),
    ]

    static func run(sysfs: Sysfs, settle: () -> Void) -> [String] {
        let writer = SRIOVWriter(sysfs: sysfs)
        let scanner = HostScanner(sysfs: sysfs)
        var lines: [String] = []
        func step(_ name: String, _ body: () throws -> Void) {
            do {
                try body()
                lines.append("\(name): ok")
            } catch let error as SysfsError {
                lines.append("\(name): \(error.name)")
            } catch {
                lines.append("\(name): \(error)")
            }
        }
        func show(_ pf: PCIAddress) {
            guard let snapshot = scanner.scan(pf: pf) else { return lines.append("  \(pf): gone") }
            let vfs = snapshot.vfs.map {
                "\($0.index)=\($0.address)/\($0.driver ?? "-")/\($0.iommuGroup != nil ? "g" : "-")"
            }
            let autoprobe = snapshot.pf.driversAutoprobe.map { $0 ? "1" : "0" } ?? "-"
            lines.append(
                "  \(pf): driver=\(snapshot.pf.driver ?? "-") total=\(snapshot.pf.totalVFs) num=\(snapshot.pf.numVFs)"
                    + " autoprobe=\(autoprobe) if=\(snapshot.pf.interfaces.count) vfs=[\(vfs.joined(separator: " "))]")
        }
        func driver(_ device: PCIAddress) -> String { ((try? writer.driver(of: device)) ?? nil)?.rawValue ?? "-" }

        show(igb)
        show(nvme)
        step("numvfs 'abc'") { try sysfs.write(.sriovNumVFs, of: igb, "abc") }
        step("numvfs 8 (> total)") { try writer.setNumVFs(igb, 8) }
        step("numvfs 2") { try writer.setNumVFs(igb, 2) }
        step("numvfs 3 while 2") { try writer.setNumVFs(igb, 3) }
        step("numvfs 2 again") { try writer.setNumVFs(igb, 2) }
        show(igb)
        step("nvme numvfs 2") { try writer.setNumVFs(nvme, 2) }
        settle()
        show(nvme)
        step("bind vfio-pci, no override") { try writer.bind(igbVF0, to: .vfioPCI) }
        step("bind igbvf while bound") { try writer.bind(igbVF0, to: DriverName("igbvf")!) }
        step("override vfio-pci while bound") { try writer.setDriverOverride(igbVF0, .vfioPCI) }
        step("probe while bound") { try writer.probe(igbVF0) }
        lines.append("  vf0 driver=\(driver(igbVF0))")
        step("unbind vf0") { try writer.unbind(igbVF0) }
        step("bind igbvf with override vfio-pci") { try writer.bind(igbVF0, to: DriverName("igbvf")!) }
        step("probe vf0") { try writer.probe(igbVF0) }
        lines.append("  vf0 driver=\(driver(igbVF0))")
        step("unbind from wrong driver") { try sysfs.write(.unbind, of: DriverName("igbvf")!, device: igbVF0) }
        step("unbind vf0 again") { try writer.unbind(igbVF0) }
        step("clear override") { try writer.setDriverOverride(igbVF0, nil) }
        lines.append("  override=\(((try? writer.driverOverride(of: igbVF0)) ?? nil)?.rawValue ?? "(null)")")
        step("probe vf0 back") { try writer.probe(igbVF0) }
        lines.append("  vf0 driver=\(driver(igbVF0))")
        step("nvme vf0 bind nvme") { try writer.bind(nvmeVF0, to: DriverName("nvme")!) }
        settle()
        lines.append("  nvme vf0 driver=\(driver(nvmeVF0))")
        step("nvme vf0 override vfio-pci") { try writer.setDriverOverride(nvmeVF0, .vfioPCI) }
        step("nvme vf0 probe") { try writer.probe(nvmeVF0) }
        show(nvme)
        step("nvme numvfs 0 with vf0 on vfio-pci") { try writer.setNumVFs(nvme, 0) }
        show(nvme)
        step("igb numvfs 0") { try writer.setNumVFs(igb, 0) }
        step("autoprobe 'maybe'") { try sysfs.write(.sriovDriversAutoprobe, of: igb, "maybe") }
        step("autoprobe 0") { try writer.setDriversAutoprobe(igb, false) }
        step("numvfs 2 autoprobe off") { try writer.setNumVFs(igb, 2) }
        show(igb)
        step("probe vf0 autoprobe off") { try writer.probe(igbVF0) }
        step("bind igbvf autoprobe off") { try writer.bind(igbVF0, to: DriverName("igbvf")!) }
        lines.append("  vf0 driver=\(driver(igbVF0))")
        step("autoprobe 1") { try writer.setDriversAutoprobe(igb, true) }
        step("bind igbvf autoprobe on") { try writer.bind(igbVF0, to: DriverName("igbvf")!) }
        lines.append("  vf0 driver=\(driver(igbVF0))")
        step("unbind igb PF") { try writer.unbind(igb) }
        show(igb)
        step("numvfs 1 without PF driver") { try writer.setNumVFs(igb, 1) }
        step("numvfs 0 without PF driver") { try writer.setNumVFs(igb, 0) }
        step("probe PF") { try writer.probe(igb) }
        show(igb)
        step("probe absent device") { try writer.probe(PCIAddress("0000:02:1f.7")!) }
        return lines
    }
}

@Suite("The simulation replays the real kernel's answers")
struct LabConformanceTests {
    @Test func simulatedLabMatchesTheKernelTranscript() throws {
        let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let recorded = try String(
            contentsOf: fixtures.appendingPathComponent("lab-6.1-writer-transcript.txt"), encoding: .utf8)
        let expected = recorded.split(separator: "\n").map(String.init)
        #expect(expected.count >= 50)

        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try SimulatedHost.ensure(at: folder.url, profiles: LabConformance.profiles)
        let lines = LabConformance.run(sysfs: Sysfs(backend: SimulatedKernel(root: folder.url)), settle: {})
        #expect(lines.count == expected.count)
        for (index, (got, want)) in zip(lines, expected).enumerated() {
            #expect(got == want, "line \(index + 1)")
        }
    }
}
