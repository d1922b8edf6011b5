import ArgumentParser
import FoundationEssentials
import Glibc
import HostSimulator
import SRIOVCore
import SRIOVHardware

struct Inventory: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the host's PFs and VFs without starting a server.")

    @OptionGroup var host: HostOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let snapshot = HostScanner(sysfs: try host.makeHost().sysfs).scan()
        if json {
            struct Entry: Encodable {
                var pf: PhysicalFunction
                var vfs: [VirtualFunction]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let entries = snapshot.pfs.map { Entry(pf: $0.pf, vfs: $0.vfs) }
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
            return
        }
        print(row(["ADDRESS", "KIND", "ID", "DRIVER", "NETDEV", "NUMA", "VFS", "IOMMU"]))
        for entry in snapshot.pfs {
            let pf = entry.pf
            print(
                row([
                    pf.address.description, "PF", "\(pf.vendorID):\(pf.deviceID)", pf.driver ?? "-",
                    pf.interfaces.joined(separator: ",").nonEmpty ?? "-", pf.numaNode.map(String.init) ?? "-",
                    "\(pf.numVFs)/\(pf.totalVFs)", "-",
                ]))
            for vf in entry.vfs {
                print(
                    row([
                        "  " + vf.address.description, "VF \(vf.index)", "\(vf.vendorID):\(vf.deviceID)",
                        vf.driver ?? "-", vf.interface ?? "-", vf.numaNode.map(String.init) ?? "-", "-",
                        vf.iommuGroup.map(String.init) ?? "-",
                    ]))
            }
        }
    }

    private func row(_ cells: [String]) -> String {
        let widths = [16, 6, 11, 11, 14, 5, 8, 5]
        return zip(cells, widths).map { $0.padded(toWidth: $1) }
            .joined(separator: " ").trimmingWhitespace()
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage a simulated host.", subcommands: [Reboot.self, Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the default simulated host in DIR.")

        @Argument(help: "The simulated host's folder.")
        var dir: String

        @Option(help: "Instead of the default host, this many E810-like PFs (for benchmarks).")
        var pfs: Int?

        @Option(help: "With --pfs: VFs enabled on each PF.")
        var vfsPerPF: Int = 128

        func run() throws {
            let folder = URL(fileURLWithPath: dir)
            if let pfs {
                guard (1...56).contains(pfs), (0...256).contains(vfsPerPF) else {
                    throw ValidationError("--pfs must be 1 to 56 and --vfs-per-pf 0 to 256")
                }
                try SimulatedHost.ensure(
                    at: folder, profiles: SimulatedHost.scaledProfiles(pfCount: pfs, vfsPerPF: vfsPerPF))
            } else {
                try SimulatedHost.ensureDefault(at: folder)
            }
        }
    }

    struct Reboot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put DIR in the state a host reboot leaves: 0 VFs, default drivers, no VF settings.")

        @Argument(help: "The simulated host's folder.")
        var dir: String

        func run() throws {
            try SimulatedHost.reboot(at: URL(fileURLWithPath: dir))
        }
    }
}
