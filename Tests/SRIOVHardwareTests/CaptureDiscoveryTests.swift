import Foundation
import SRIOVCore
import Testing

@testable import SRIOVHardware

/// Discovery over what Debian's 6.1 kernel really showed (see Fixtures/kernel-6.1-lab-sysfs.tar.gz).
@Suite("Discovery over the kernel 6.1 captures")
struct CaptureDiscoveryTests {
    @Test func bootWithNoDriverFindsBothPFsUnbound() throws {
        let snapshot = HostScanner(sysfs: try Captures.sysfs("00-boot-no-driver")).scan()
        #expect(snapshot.pfs.map(\.pf.address) == [Address.labNVMe, Address.labIGB])
        let nvme = snapshot.pfs[0].pf
        let igb = snapshot.pfs[1].pf
        #expect(nvme.driver == nil && igb.driver == nil)
        // Unbound, igb shows the device's own TotalVFs (8); the igb driver lowers it to 7 once bound.
        #expect(nvme.totalVFs == 4 && igb.totalVFs == 8)
        #expect(nvme.vendorID == "1b36" && nvme.deviceID == "0010" && nvme.pciClass == "0x010802")
        #expect(igb.vendorID == "8086" && igb.deviceID == "10c9" && igb.pciClass == "0x020000")
        #expect(igb.vfDeviceID == "10ca" && igb.vfOffset == 128 && igb.vfStride == 2)
        #expect(nvme.vfOffset == 1 && nvme.vfStride == 1)
        #expect(igb.interfaces.isEmpty && igb.link == nil, "no driver, no netdev")
        #expect(nvme.numaNode == nil && igb.numaNode == nil, "numa_node -1")
        #expect(snapshot.pfs.allSatisfy { $0.vfs.isEmpty && $0.pf.numVFs == 0 && $0.pf.driversAutoprobe == true })
    }

    @Test func boundWithNoVFs() throws {
        let snapshot = HostScanner(sysfs: try Captures.sysfs("01-pf-bound-0vfs")).scan()
        #expect(snapshot.pfs.map(\.pf.driver) == ["nvme", "igb"])
        #expect(snapshot.pfs.map(\.pf.totalVFs) == [4, 7])
        let igb = snapshot.pfs[1].pf
        #expect(igb.interfaces == ["eth0"])
        #expect(igb.link == NetworkLink(state: "up", speedMbps: 1000, mtu: 1500, mac: "52:54:00:12:34:56"))
        #expect(snapshot.pfs.allSatisfy { $0.vfs.isEmpty && $0.pf.numVFs == 0 })
    }

    @Test func twoAutoprobedVFsEach() throws {
        let snapshot = HostScanner(sysfs: try Captures.sysfs("02-2vfs-autoprobed")).scan()
        #expect(snapshot.pfs.count == 2)
        let nvme = snapshot.pfs[0]
        let igb = snapshot.pfs[1]
        #expect(nvme.pf.numVFs == 2 && igb.pf.numVFs == 2)

        #expect(igb.vfs.map(\.address) == Address.list("0000:02:10.0", "0000:02:10.2"))
        #expect(igb.vfs.map(\.driver) == ["igbvf", "igbvf"])
        #expect(igb.vfs.map(\.interface) == ["eth1", "eth2"])
        #expect(igb.vfs.map(\.iommuGroup) == [9, 10])
        #expect(igb.vfs.allSatisfy { $0.pf == Address.labIGB && $0.vendorID == "8086" && $0.deviceID == "10ca" })
        #expect(igb.vfs.allSatisfy { $0.numaNode == nil })

        #expect(nvme.vfs.map(\.address) == Address.list("0000:01:00.1", "0000:01:00.2"))
        #expect(nvme.vfs.map(\.driver) == [nil, nil], "the NVMe VFs stay unbound after a failed probe")
        #expect(nvme.vfs.map(\.interface) == [nil, nil])
        #expect(nvme.vfs.map(\.iommuGroup) == [11, 12])
        #expect(nvme.vfs.map(\.index) == [0, 1])
    }

    @Test func vfZeroOnVFIO() throws {
        let scanner = HostScanner(sysfs: try Captures.sysfs("03-vf0-vfio-pci"))
        let snapshot = scanner.scan()
        #expect(snapshot.pfs.map { $0.vfs.map(\.driver) } == [["vfio-pci", nil], ["vfio-pci", "igbvf"]])
        #expect(snapshot.pfs[1].vfs.map(\.interface) == [nil, "eth2"])
        #expect(snapshot.pfs.map { $0.vfs.map(\.iommuGroup) } == [[11, 12], [9, 10]])
        let vf = try #require(scanner.virtualFunction(PCIAddress("0000:02:10.0")!))
        #expect(vf.index == 0 && vf.pf == Address.labIGB && vf.driver == "vfio-pci" && vf.iommuGroup == 9)
        let writer = SRIOVWriter(sysfs: try Captures.sysfs("03-vf0-vfio-pci"))
        #expect(try writer.driverOverride(of: PCIAddress("0000:02:10.0")!) == .vfioPCI)
        #expect(try writer.driverOverride(of: PCIAddress("0000:02:10.2")!) == nil)
    }

    @Test func netdevsimIsNotPCI() throws {
        // This capture holds only the netdevsim bus (its walk did not record bus/pci): no PCI PF, and no trap.
        let sysfs = try Captures.sysfs("04-netdevsim-4vfs")
        #expect(HostScanner(sysfs: sysfs).scan().pfs.isEmpty)
        #expect(sysfs.backend.fileExists("bus/netdevsim/devices/netdevsim10/sriov_numvfs"))
    }

    @Test func afterNumVFsZero() throws {
        let snapshot = HostScanner(sysfs: try Captures.sysfs("05-after-numvfs-0")).scan()
        #expect(snapshot.pfs.map(\.pf.address) == [Address.labNVMe, Address.labIGB])
        #expect(snapshot.pfs.allSatisfy { $0.vfs.isEmpty && $0.pf.numVFs == 0 })
        #expect(snapshot.pfs.map(\.pf.driver) == ["nvme", "igb"])
    }

    @Test(arguments: Captures.states)
    func everyStateScansConsistently(_ state: String) throws {
        let scanner = HostScanner(sysfs: try Captures.sysfs(state))
        for pf in scanner.scan().pfs {
            #expect(pf.vfs.count == pf.pf.numVFs)
            #expect(pf.vfs.map(\.index) == Array(0..<pf.vfs.count))
            for vf in pf.vfs {
                // VF addresses follow offset + stride × index.
                let expected = pf.pf.address.advanced(byRoutingIDs: pf.pf.vfOffset! + pf.pf.vfStride! * vf.index)
                #expect(vf.address == expected)
                #expect(scanner.virtualFunction(vf.address) == vf)
            }
        }
    }
}
