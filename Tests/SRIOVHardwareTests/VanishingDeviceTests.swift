import Foundation
import SRIOVCore
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

/// A backend that, at the Nth read of a path containing `trigger`, removes parts of the tree first: a device
/// vanishing in the middle of a scan, as when another writer sets `sriov_numvfs` to 0 or a PF is unplugged.
final class VanishingBackend: SysfsBackend, @unchecked Sendable {
    let inner: SimulatedKernel
    let trigger: String
    let onRead: Int
    let vanish: @Sendable () -> Void
    private let lock = NSLock()
    private var reads = 0

    init(inner: SimulatedKernel, trigger: String, onRead: Int = 1, vanish: @escaping @Sendable () -> Void) {
        self.inner = inner
        self.trigger = trigger
        self.onRead = onRead
        self.vanish = vanish
    }

    private func tick(_ path: String) {
        guard path.contains(trigger) else { return }
        let fire = lock.withLock { () -> Bool in
            reads += 1
            return reads == onRead
        }
        if fire { vanish() }
    }

    func readFile(_ path: String) throws(SysfsError) -> String {
        tick(path)
        return try inner.readFile(path)
    }

    func writeFile(_ path: String, _ value: String) throws(SysfsError) { try inner.writeFile(path, value) }

    func listDirectory(_ path: String) throws(SysfsError) -> [String] {
        tick(path)
        return try inner.listDirectory(path)
    }

    func readLink(_ path: String) throws(SysfsError) -> String {
        tick(path)
        return try inner.readLink(path)
    }

    func kind(of path: String) -> SysfsEntryKind? { inner.kind(of: path) }
    func fileExists(_ path: String) -> Bool { inner.fileExists(path) }
}

@Suite("Devices vanishing mid-scan")
struct VanishingDeviceTests {
    /// Removes a file or a folder of the tree by hand (not through the kernel: nothing else is updated).
    static func delete(_ root: URL, _ relative: String) {
        try? FileManager.default.removeItem(at: root.appendingPathComponent(relative))
    }

    @Test func aVFFolderVanishingWhileItsFilesAreRead() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let root = host.root
        // When the scan first reads VF 3b:02.1's driver link, its folder disappears.
        let backend = VanishingBackend(inner: host.kernel, trigger: "0000:3b:02.1/driver") {
            VanishingDeviceTests.delete(root, "devices/pci0000:3a/0000:3a:00.0/0000:3b:02.1")
        }
        let snapshot = HostScanner(sysfs: Sysfs(backend: backend)).scan()
        let x710 = try #require(snapshot.pfs.first { $0.pf.address == Address.x710 })
        #expect(x710.vfs.map(\.address) == Address.list("0000:3b:02.0", "0000:3b:02.2", "0000:3b:02.3"))
        #expect(x710.vfs.map(\.index) == [0, 2, 3])
        #expect(x710.vfs.allSatisfy { $0.driver == "iavf" && $0.interface != nil })
        #expect(snapshot.pfs.count == 4, "the other PFs are untouched")
    }

    @Test func allVFsVanishingThroughTheKernel() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let kernel = host.kernel
        // Another writer sets sriov_numvfs to 0 while the scan reads the second VF.
        let backend = VanishingBackend(inner: kernel, trigger: "0000:3b:02.1/vendor") {
            try? kernel.writeFile("bus/pci/devices/0000:3b:00.0/sriov_numvfs", "0")
        }
        let x710 = try #require(HostScanner(sysfs: Sysfs(backend: backend)).scan(pf: Address.x710))
        // The re-read after the change settles on the new state.
        #expect(x710.pf.numVFs == 0 && x710.vfs.isEmpty)
    }

    @Test func aVirtfnLinkDanglingAfterItsVFWentAway() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let root = host.root
        let backend = VanishingBackend(inner: host.kernel, trigger: "0000:af:00.0/virtfn1") {
            VanishingDeviceTests.delete(root, "devices/pci0000:ae/0000:ae:00.0/0000:af:00.3")
            VanishingDeviceTests.delete(root, "bus/pci/devices/0000:af:00.3")
        }
        let connectX = try #require(HostScanner(sysfs: Sysfs(backend: backend)).scan(pf: Address.connectX))
        #expect(connectX.vfs.map(\.address) == Address.list("0000:af:00.2"))
        #expect(connectX.pf.numVFs == 2, "what the PF still reports; the caller sees the mismatch")
    }

    @Test func aPFVanishingMidScan() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let root = host.root
        // The PF is unplugged while its VFs are listed: no trace of it, nor of its VFs.
        let backend = VanishingBackend(inner: host.kernel, trigger: "0000:3b:00.0/virtfn0") {
            VanishingDeviceTests.delete(root, "devices/pci0000:3a/0000:3a:00.0")
            for name in ["0000:3b:00.0", "0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3"] {
                VanishingDeviceTests.delete(root, "bus/pci/devices/" + name)
            }
        }
        let scanner = HostScanner(sysfs: Sysfs(backend: backend))
        let snapshot = scanner.scan()
        #expect(snapshot.pfs.map(\.pf.address) == [Address.e810, Address.connectX, Address.nvme])
        #expect(scanner.scan(pf: Address.x710) == nil)
        #expect(scanner.virtualFunction(PCIAddress("0000:3b:02.0")!) == nil)
    }

    @Test func aVanishingNetdevLeavesTheRestOfThePF() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let root = host.root
        let backend = VanishingBackend(inner: host.kernel, trigger: "net/ens801f0/operstate") {
            VanishingDeviceTests.delete(root, "devices/pci0000:5d/0000:5d:00.0/0000:5e:00.0/net/ens801f0")
        }
        let e810 = try #require(HostScanner(sysfs: Sysfs(backend: backend)).scan(pf: Address.e810))
        // The PF is read again after its VFs: that reading no longer sees the netdev, and is the one returned.
        #expect(e810.pf.driver == "ice" && e810.pf.totalVFs == 128)
        #expect(e810.pf.interfaces.isEmpty && e810.pf.link == nil)
    }

    @Test func aMissingDevicesFolderGivesAnEmptyHost() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        #expect(HostScanner(sysfs: Sysfs(backend: KernelSysfs(root: folder.url))).scan().pfs.isEmpty)
    }
}
