import Foundation
import SRIOVCore
import Synchronization
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

/// A fresh empty folder under the system temporary folder, removed by `remove()`.
struct TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("sriovhw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Where the captures were unpacked, removed when the test process exits.
private let unpackedFolder = Mutex<String?>(nil)

/// The kernel captures, unpacked once per test process with /usr/bin/tar.
enum Captures {
    static let states = [
        "00-boot-no-driver", "01-pf-bound-0vfs", "02-2vfs-autoprobed", "03-vf0-vfio-pci", "04-netdevsim-4vfs",
        "05-after-numvfs-0",
    ]

    /// `<unpacked>/kernel-6.1-lab-sysfs`.
    static let folder: Result<URL, UnpackError> = unpack()

    struct UnpackError: Error, CustomStringConvertible {
        var description: String
    }

    static func sysfs(_ state: String) throws -> Sysfs {
        let root = try folder.get().appendingPathComponent(state).appendingPathComponent("sys")
        return Sysfs(backend: KernelSysfs(root: root))
    }

    private static func unpack() -> Result<URL, UnpackError> {
        guard let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            return .failure(UnpackError(description: "no Fixtures resource"))
        }
        let tarball = fixtures.appendingPathComponent("kernel-6.1-lab-sysfs.tar.gz")
        do {
            let destination = try TemporaryFolder().url
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
            process.arguments = ["-xzf", tarball.path, "-C", destination.path]
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                return .failure(UnpackError(description: "tar exited \(process.terminationStatus)"))
            }
            unpackedFolder.withLock { $0 = destination.path }
            atexit {
                if let path = unpackedFolder.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
            }
            return .success(destination.appendingPathComponent("kernel-6.1-lab-sysfs"))
        } catch {
            return .failure(UnpackError(description: "\(error)"))
        }
    }
}

/// A default simulated host in a fresh folder.
struct SimulatedFixture {
    let folder: TemporaryFolder
    let kernel: SimulatedKernel
    let sysfs: Sysfs
    let scanner: HostScanner
    let writer: SRIOVWriter

    init() throws {
        folder = try TemporaryFolder()
        try SimulatedHost.ensureDefault(at: folder.url)
        kernel = SimulatedKernel(root: folder.url)
        sysfs = Sysfs(backend: kernel)
        scanner = HostScanner(sysfs: sysfs)
        writer = SRIOVWriter(sysfs: sysfs)
    }

    var root: URL { folder.url }

    func remove() { folder.remove() }

    func pf(_ address: PCIAddress) throws -> PFSnapshot {
        try #require(scanner.scan(pf: address))
    }

    /// Writes a file in the tree directly, as a test's setup.
    func writeFile(_ relative: String, _ content: String) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(content.utf8).write(to: url)
    }
}

/// Addresses used throughout.
enum Address {
    static let x710 = PCIAddress("0000:3b:00.0")!
    static let e810 = PCIAddress("0000:5e:00.0")!
    static let connectX = PCIAddress("0000:af:00.0")!
    static let nvme = PCIAddress("0000:d8:00.0")!
    static let labNVMe = PCIAddress("0000:01:00.0")!
    static let labIGB = PCIAddress("0000:02:00.0")!

    static func list(_ texts: String...) -> [PCIAddress] { texts.map { PCIAddress($0)! } }
}

/// Runs `body` expecting a `SysfsError` with the errno name.
func expectErrno(
    _ name: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected \(name), the write succeeded", sourceLocation: sourceLocation)
    } catch let error as SysfsError {
        #expect(error.name == name, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a SysfsError \(name), got \(error)", sourceLocation: sourceLocation)
    }
}
