import Foundation
import SRIOVCore
import Testing

@testable import SRIOVHardware

@Suite("Sysfs paths")
struct SysfsPathTests {
    @Test(arguments: ["..", ".", "a/b", "/", "vfio\0pci", "", "bad name", "x;rm", String(repeating: "d", count: 65)])
    func driverNamesRejectUnsafeText(_ text: String) {
        #expect(DriverName(text) == nil)
    }

    @Test(arguments: ["vfio-pci", "mlx5_core", "i40e", "drv.v2", String(repeating: "d", count: 64)])
    func driverNamesAcceptKernelNames(_ text: String) {
        #expect(DriverName(text)?.rawValue == text)
    }

    @Test(arguments: ["..", ".", "eth0/../x", "/", "eth\00", "", String(repeating: "e", count: 16), "ä0"])
    func interfaceNamesRejectUnsafeText(_ text: String) {
        #expect(InterfaceName(text) == nil)
    }

    @Test func interfaceNamesAcceptUpTo15Characters() {
        #expect(InterfaceName("ens3f0np0v127")?.rawValue == "ens3f0np0v127")
        #expect(InterfaceName(String(repeating: "e", count: 15)) != nil)
    }

    @Test func pathsAreBuiltFromValidatedParts() {
        let pf = Address.x710
        #expect(Sysfs.path(.sriovNumVFs, of: pf) == "bus/pci/devices/0000:3b:00.0/sriov_numvfs")
        #expect(Sysfs.path(.virtfn(3), of: pf) == "bus/pci/devices/0000:3b:00.0/virtfn3")
        #expect(Sysfs.path(.iommuGroup, of: pf) == "bus/pci/devices/0000:3b:00.0/iommu_group")
        #expect(Sysfs.path(.unbind, of: .vfioPCI) == "bus/pci/drivers/vfio-pci/unbind")
        #expect(
            Sysfs.path(.operstate, of: InterfaceName("ens785f0")!, on: pf)
                == "bus/pci/devices/0000:3b:00.0/net/ens785f0/operstate")
        #expect(Sysfs.path(.virtfn(-5), of: pf).hasSuffix("virtfn0"))
    }

    @Test func backendRejectsEscapingPaths() {
        let backend = KernelSysfs(root: "/sys/")
        #expect(backend.root == "/sys")
        for path in ["../etc/passwd", "bus/../../etc", "/etc/passwd", "bus//pci", "bus/./pci", "a\0b"] {
            do {
                _ = try backend.readFile(path)
                Issue.record("read of \(path) was allowed")
            } catch {
                #expect(error.name == "EINVAL")
            }
        }
    }

    @Test func kernelSysfsCapturesErrno() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let backend = KernelSysfs(root: folder.url)
        do {
            _ = try backend.readFile("nothing")
            Issue.record("read of a missing file succeeded")
        } catch {
            #expect(error.name == "ENOENT" && error.isNotFound && error.path == "nothing" && error.operation == .read)
        }
        try Data("old-long-content\n".utf8).write(to: folder.url.appendingPathComponent("attr"))
        try backend.writeFile("attr", "1\n")
        #expect(try backend.readFile("attr") == "1\n")
        expectErrno("EISDIR") { try backend.writeFile("", "x") }
        #expect(backend.kind(of: "attr") == .file && backend.kind(of: "nothing") == nil)
        #expect(SysfsError(errno: ERANGE, operation: .write, path: "p").name == "ERANGE")
        #expect(SysfsError(errno: 9999, operation: .write, path: "p").name == "E9999")
    }
}
