import Foundation
import SRIOVCore
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

@Suite("Discovery over the default simulated host")
struct SimulatedDiscoveryTests {
    @Test func findsTheFourPFsWithTheirIdentity() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let snapshot = host.scanner.scan()
        #expect(snapshot.pfs.map(\.pf.address) == [Address.x710, Address.e810, Address.connectX, Address.nvme])
        let byAddress = Dictionary(uniqueKeysWithValues: snapshot.pfs.map { ($0.pf.address, $0.pf) })

        let x710 = try #require(byAddress[Address.x710])
        #expect(x710.vendorID == "8086" && x710.deviceID == "1572" && x710.pciClass == "0x020000")
        #expect(x710.driver == "i40e" && x710.interfaces == ["ens785f0"] && x710.numaNode == 0)
        #expect(x710.totalVFs == 64 && x710.numVFs == 4 && x710.vfDeviceID == "154c")
        #expect(x710.vfOffset == 16 && x710.vfStride == 1 && x710.driversAutoprobe == true)
        #expect(x710.link == NetworkLink(state: "up", speedMbps: 10000, mtu: 1500, mac: "3c:fd:fe:b4:6a:40"))
        #expect(x710.isNetwork)

        let e810 = try #require(byAddress[Address.e810])
        #expect(e810.deviceID == "159b" && e810.driver == "ice" && e810.totalVFs == 128 && e810.numVFs == 0)
        #expect(e810.vfDeviceID == "1889" && e810.vfOffset == 8 && e810.interfaces == ["ens801f0"])
        #expect(e810.numaNode == 0 && e810.link?.speedMbps == 25000)

        let connectX = try #require(byAddress[Address.connectX])
        #expect(connectX.vendorID == "15b3" && connectX.deviceID == "101d" && connectX.driver == "mlx5_core")
        #expect(connectX.totalVFs == 8 && connectX.numVFs == 2 && connectX.vfDeviceID == "101e")
        #expect(connectX.numaNode == 1 && connectX.interfaces == ["ens3f0np0"] && connectX.vfOffset == 2)

        let nvme = try #require(byAddress[Address.nvme])
        #expect(nvme.vendorID == "144d" && nvme.deviceID == "a824" && nvme.pciClass == "0x010802")
        #expect(nvme.driver == "nvme" && nvme.interfaces.isEmpty && nvme.link == nil && !nvme.isNetwork)
        #expect(nvme.totalVFs == 4 && nvme.numVFs == 0 && nvme.numaNode == 1)
    }

    @Test func readsVFsFromTheirVirtfnLinks() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let x710 = try host.pf(Address.x710)
        #expect(x710.vfs.map(\.address) == Address.list("0000:3b:02.0", "0000:3b:02.1", "0000:3b:02.2", "0000:3b:02.3"))
        #expect(x710.vfs.map(\.index) == [0, 1, 2, 3])
        for vf in x710.vfs {
            #expect(vf.pf == Address.x710 && vf.vendorID == "8086" && vf.deviceID == "154c")
            #expect(vf.driver == "iavf" && vf.interface == "ens785f0v\(vf.index)" && vf.numaNode == 0)
            #expect((vf.iommuGroup ?? 0) >= 128)
        }
        #expect(Set(x710.vfs.compactMap(\.iommuGroup)).count == 4, "each VF in its own IOMMU group")

        let connectX = try host.pf(Address.connectX)
        #expect(connectX.vfs.map(\.address) == Address.list("0000:af:00.2", "0000:af:00.3"))
        #expect(connectX.vfs.map(\.driver) == ["mlx5_core", "mlx5_core"])
        #expect(connectX.vfs.map(\.interface) == ["ens3f0np0v0", "ens3f0np0v1"])
        #expect(connectX.vfs.allSatisfy { $0.numaNode == 1 && $0.deviceID == "101e" })

        #expect(try host.pf(Address.e810).vfs.isEmpty)
        #expect(try host.pf(Address.nvme).vfs.isEmpty)
    }

    @Test func findsOneVFByItsAddress() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let vf = try #require(host.scanner.virtualFunction(PCIAddress("0000:3b:02.2")!))
        #expect(vf.index == 2 && vf.pf == Address.x710 && vf.interface == "ens785f0v2")
        #expect(host.scanner.virtualFunction(Address.x710) == nil, "a PF is not a VF")
        #expect(host.scanner.virtualFunction(PCIAddress("0000:3b:07.0")!) == nil, "no such device")
        #expect(host.scanner.scan(pf: PCIAddress("0000:3a:00.0")!) == nil, "a bridge is not an SR-IOV PF")
        #expect(host.scanner.scan(pf: PCIAddress("0000:3b:02.0")!) == nil, "a VF is not a PF")
    }

    @Test func treeHasTheKernelsShape() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let backend = host.kernel
        #expect(
            try backend.readLink("bus/pci/devices/0000:3b:00.0")
                == "../../../devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0")
        #expect(try backend.readLink("bus/pci/devices/0000:3b:00.0/driver") == "../../../../bus/pci/drivers/i40e")
        #expect(try backend.readLink("bus/pci/devices/0000:3b:00.0/virtfn1") == "../0000:3b:02.1")
        #expect(try backend.readLink("bus/pci/devices/0000:3b:02.1/physfn") == "../0000:3b:00.0")
        #expect(
            try backend.readLink("bus/pci/drivers/iavf/0000:3b:02.1")
                == "../../../../devices/pci0000:3a/0000:3a:00.0/0000:3b:02.1")
        #expect(
            try backend.readLink("class/net/ens785f0")
                == "../../devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/net/ens785f0")
        let group = try backend.readLink("bus/pci/devices/0000:3b:02.1/iommu_group")
        #expect(group.hasPrefix("../../../../kernel/iommu_groups/"))
        #expect(backend.kind(of: "bus/pci/drivers/vfio-pci/bind") == .file)
        #expect(backend.kind(of: "bus/pci/devices/0000:3b:00.0") == .symlink)
        #expect(backend.kind(of: "devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0") == .directory)
        #expect(try backend.readFile("bus/pci/devices/0000:3b:02.1/driver_override") == "(null)\n")
        #expect(try backend.readFile("bus/pci/devices/0000:3b:00.0/sriov_vf_device") == "154c\n")
        #expect(try backend.readFile("bus/pci/devices/0000:3b:00.0/vendor") == "0x8086\n")
    }

    @Test func ensureDefaultLeavesAnExistingTreeAlone() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writer.setNumVFs(Address.connectX, 0)
        try host.writer.setNumVFs(Address.connectX, 5)
        try SimulatedHost.ensureDefault(at: host.root)
        // A new backend over the same folder: the state survived, as across a daemon restart.
        let reopened = HostScanner(sysfs: Sysfs(backend: SimulatedKernel(root: host.root)))
        #expect(reopened.scan(pf: Address.connectX)?.vfs.count == 5)
        #expect(reopened.scan(pf: Address.x710)?.pf.numVFs == 4)
    }

    @Test func ensureDefaultCreatesAMissingFolder() throws {
        let parent = try TemporaryFolder()
        defer { parent.remove() }
        let dir = parent.url.appendingPathComponent("a/b/sim")
        try SimulatedHost.ensureDefault(at: dir)
        let snapshot = HostScanner(sysfs: Sysfs(backend: SimulatedKernel(root: dir))).scan()
        #expect(snapshot.pfs.count == 4)
        #expect(snapshot.pfs.map(\.vfs.count) == [4, 0, 2, 0])
    }
}
