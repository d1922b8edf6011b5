import Foundation
import SRIOVCore
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

/// The simulated kernel with its folder handles hidden: every read goes by its whole path.
struct PathOnlyBackend: SysfsBackend {
    let inner: SimulatedKernel

    func readFile(_ path: String) throws(SysfsError) -> String { try inner.readFile(path) }
    func writeFile(_ path: String, _ value: String) throws(SysfsError) { try inner.writeFile(path, value) }
    func listDirectory(_ path: String) throws(SysfsError) -> [String] { try inner.listDirectory(path) }
    func readLink(_ path: String) throws(SysfsError) -> String { try inner.readLink(path) }
    func kind(of path: String) -> SysfsEntryKind? { inner.kind(of: path) }
    func fileExists(_ path: String) -> Bool { inner.fileExists(path) }
}

@Suite("Device folders read relative to an open folder")
struct DeviceFolderTests {
    @Test func aScanThroughFolderHandlesEqualsOneByWholePaths() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        #expect(try host.sysfs.folder(of: Address.x710).handle != nil, "the simulated kernel opens folders")
        let byPath = HostScanner(sysfs: Sysfs(backend: PathOnlyBackend(inner: host.kernel))).scan()
        let byFolder = host.scanner.scan()
        #expect(byFolder == byPath)
        #expect(byFolder.pfs.reduce(0) { $0 + $1.vfs.count } == 6, "4 X710 VFs and 2 ConnectX VFs")
    }

    @Test func folderReadsAnswerAsPathReads() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let sysfs = host.sysfs
        let pf = try sysfs.folder(of: Address.x710)
        #expect(try pf.virtfnIndices() == sysfs.virtfnIndices(of: Address.x710))
        #expect(try pf.virtfnIndices() == [0, 1, 2, 3])
        #expect(try pf.read(.sriovNumVFs) == "4" && pf.readInt(.sriovTotalVFs) == 64)
        #expect(try pf.interfaces() == sysfs.interfaces(of: Address.x710))
        let vf = try #require(PCIAddress(try pf.linkBasename(.virtfn(1))))
        #expect(vf.description == "0000:3b:02.1")
        let folder = try sysfs.folder(of: vf)
        #expect(try folder.read(.vendor) == sysfs.read(.vendor, of: vf))
        #expect(try folder.driver() == sysfs.driver(of: vf) && folder.driver()?.rawValue == "iavf")
        #expect(try folder.linkBasename(.iommuGroup) == sysfs.linkBasename(.iommuGroup, of: vf))
        #expect(try folder.linkBasename(.physfn) == Address.x710.description)
        expectErrno("ENOENT") { _ = try folder.read(.sriovTotalVFs) }
    }

    @Test func aDeviceRemovedAfterItsFolderOpenedFailsItsReads() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let vf = PCIAddress("0000:3b:02.2")!
        let folder = try host.sysfs.folder(of: vf)
        try host.kernel.writeFile("bus/pci/devices/0000:3b:00.0/sriov_numvfs", "0")
        expectErrno("ENOENT") { _ = try folder.read(.vendor) }
        expectErrno("ENOENT") { _ = try folder.driver() }
        expectErrno("ENOENT") { _ = try host.sysfs.folder(of: vf) }
        #expect(host.scanner.virtualFunction(vf, index: 2, pf: Address.x710) == nil)
    }

    @Test func handlesRejectNamesThatLeaveTheFolder() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let handle = try #require(try host.kernel.openFolder("bus/pci/devices/0000:3b:00.0"))
        for name in ["../0000:5e:00.0/vendor", "/etc/passwd", "net//x", ".", "a\0b"] {
            expectErrno("EINVAL") { _ = try handle.readFile(name) }
            expectErrno("EINVAL") { _ = try handle.readLink(name) }
        }
        expectErrno("EINVAL") { _ = try handle.listDirectory("..") }
        #expect(try handle.readFile("vendor") == "0x8086\n")
    }
}
