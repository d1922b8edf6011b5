import Foundation
import SRIOVCore
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

/// The simulated kernel answers writes as Linux 6.1 does (see /work/shared/lab/README.md).
@Suite("Simulated kernel writes")
struct SimulatedWriteTests {
    @Test func numVFsRejectsWhatTheKernelRejects() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let path = "bus/pci/devices/0000:5e:00.0/sriov_numvfs"
        expectErrno("EINVAL") { try host.kernel.writeFile(path, "two") }
        expectErrno("EINVAL") { try host.kernel.writeFile(path, "") }
        expectErrno("EINVAL") { try host.kernel.writeFile(path, "-1") }
        expectErrno("ERANGE") { try host.kernel.writeFile(path, "70000") }
        expectErrno("ERANGE") { try host.writer.setNumVFs(Address.e810, 129) }
        expectErrno("ERANGE") { try host.writer.setNumVFs(Address.connectX, 9) }
        #expect(try host.writer.readNumVFs(Address.e810) == 0)
        // A trailing newline is what `echo` sends; it is accepted.
        try host.kernel.writeFile(path, "3\n")
        #expect(try host.writer.readNumVFs(Address.e810) == 3)
    }

    @Test(arguments: [0, 4])
    func aVFCountChangeCutOffByAKillIsFinishedAtTheNextStart(count: Int) throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        // What a kill -9 in the middle of `echo 4 > sriov_numvfs` left: the journal, two of the four VFs made,
        // sriov_numvfs not yet written. The real kernel never shows this; it finishes the change.
        let tree = SimulatedTree(root: host.root.path)
        try tree.putFile(SimulatedKernel.journal, "\(Address.e810) \(count)\n", mode: 0o644)
        try SimulatedMachine(tree: tree).enableVFs(Address.e810, count: 2)
        try tree.replaceFile("bus/pci/devices/\(Address.e810)/sriov_numvfs", "0\n")
        #expect(try host.pf(Address.e810).vfs.count == 2)

        try SimulatedHost.ensureDefault(at: host.root)
        let finished = try host.pf(Address.e810)
        #expect(finished.pf.numVFs == count)
        #expect(finished.vfs.map(\.index) == Array(0..<count))
        #expect(host.kernel.kind(of: SimulatedKernel.journal) == nil)
        // Every VF listed is one the simulated rtnetlink knows too.
        let controller = VFController(host: HardwareHost.simulated(at: host.root))
        for vf in finished.vfs { _ = try controller.state(of: vf, pf: finished.pf) }
    }

    @Test func busyWhenChangingANonZeroCount() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        expectErrno("EBUSY") { try host.writer.setNumVFs(Address.x710, 8) }
        let before = try host.pf(Address.x710)
        // The same value again: success, no change.
        try host.writer.setNumVFs(Address.x710, 4)
        #expect(try host.pf(Address.x710) == before)
        // 0, then N.
        try host.writer.setNumVFs(Address.x710, 0)
        let cleared = try host.pf(Address.x710)
        #expect(cleared.pf.numVFs == 0 && cleared.vfs.isEmpty)
        #expect(!host.sysfs.deviceExists(PCIAddress("0000:3b:02.0")!))
        #expect(host.kernel.kind(of: "class/net/ens785f0v0") == nil)
        #expect(host.kernel.kind(of: "bus/pci/drivers/iavf/0000:3b:02.0") == nil)
        try host.writer.setNumVFs(Address.x710, 8)
        let grown = try host.pf(Address.x710)
        #expect(grown.pf.numVFs == 8)
        #expect(grown.vfs.map(\.address) == (0..<8).map { Address.x710.advanced(byRoutingIDs: 16 + $0)! })
        #expect(grown.vfs.allSatisfy { $0.driver == "iavf" && $0.interface == "ens785f0v\($0.index)" })
    }

    @Test func noPFDriverIsENOENT() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writer.unbind(Address.e810)
        #expect(try host.writer.driver(of: Address.e810) == nil)
        expectErrno("ENOENT") { try host.writer.setNumVFs(Address.e810, 2) }
        // The current value is a success even unbound: the kernel compares before it looks for a driver.
        try host.writer.setNumVFs(Address.e810, 0)
        let pf = try host.pf(Address.e810)
        #expect(pf.pf.driver == nil && pf.pf.interfaces.isEmpty && pf.pf.link == nil)
        // Probing rebinds the PF to its driver, with its netdev.
        try host.writer.probe(Address.e810)
        let rebound = try host.pf(Address.e810)
        #expect(rebound.pf.driver == "ice" && rebound.pf.interfaces == ["ens801f0"])
        try host.writer.setNumVFs(Address.e810, 2)
        #expect(try host.pf(Address.e810).vfs.map(\.driver) == ["iavf", "iavf"])
    }

    @Test func unbindingThePFDriverRemovesItsVFs() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writer.unbind(Address.connectX)
        let pf = try host.pf(Address.connectX)
        #expect(pf.pf.numVFs == 0 && pf.vfs.isEmpty && pf.pf.driver == nil)
        #expect(!host.sysfs.deviceExists(PCIAddress("0000:af:00.2")!))
        #expect(host.kernel.kind(of: "bus/pci/drivers/mlx5_core/0000:af:00.0") == nil)
        try host.writer.bind(Address.connectX, to: DriverName("mlx5_core")!)
        #expect(try host.pf(Address.connectX).pf.driver == "mlx5_core")
    }

    @Test func autoprobeOffLeavesNewVFsUnbound() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writer.setDriversAutoprobe(Address.e810, false)
        #expect(try host.pf(Address.e810).pf.driversAutoprobe == false)
        expectErrno("EINVAL") {
            try host.kernel.writeFile("bus/pci/devices/0000:5e:00.0/sriov_drivers_autoprobe", "maybe")
        }
        try host.writer.setNumVFs(Address.e810, 3)
        let pf = try host.pf(Address.e810)
        #expect(pf.vfs.count == 3 && pf.vfs.allSatisfy { $0.driver == nil && $0.interface == nil })
        let vf = pf.vfs[0].address
        // drivers_probe does nothing, bind fails ENODEV, unless driver_override is set.
        try host.writer.probe(vf)
        #expect(try host.writer.driver(of: vf) == nil)
        expectErrno("ENODEV") { try host.writer.bind(vf, to: DriverName("iavf")!) }
        try host.writer.setDriverOverride(vf, .vfioPCI)
        try host.writer.probe(vf)
        #expect(try host.writer.driver(of: vf) == .vfioPCI)
        #expect(host.scanner.virtualFunction(vf)?.iommuGroup != nil)
    }

    @Test func overrideUnbindProbeToVFIOAndBack() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let vf = PCIAddress("0000:3b:02.1")!
        expectErrno("EBUSY") { try host.writer.bind(vf, to: DriverName("iavf")!) }
        try host.writer.setDriverOverride(vf, .vfioPCI)
        // The override is ignored while a driver is bound.
        try host.writer.probe(vf)
        #expect(try host.writer.driver(of: vf) == DriverName("iavf"))
        try host.writer.unbind(vf)
        #expect(try host.writer.driver(of: vf) == nil)
        #expect(host.scanner.virtualFunction(vf)?.interface == nil)
        expectErrno("ENODEV") { try host.writer.bind(vf, to: DriverName("iavf")!) }
        try host.writer.probe(vf)
        let onVFIO = try #require(host.scanner.virtualFunction(vf))
        #expect(onVFIO.driver == "vfio-pci" && onVFIO.interface == nil && onVFIO.iommuGroup != nil)
        #expect(host.kernel.kind(of: "bus/pci/drivers/vfio-pci/0000:3b:02.1") == .symlink)
        #expect(try host.writer.driverOverride(of: vf) == .vfioPCI)
        // Wrong driver for unbind: ENODEV.
        expectErrno("ENODEV") { try host.sysfs.write(.unbind, of: DriverName("iavf")!, device: vf) }
        // Back: unbind, clear the override, probe.
        try host.writer.unbind(vf)
        try host.writer.setDriverOverride(vf, nil)
        #expect(try host.kernel.readFile("bus/pci/devices/0000:3b:02.1/driver_override") == "(null)\n")
        try host.writer.probe(vf)
        let back = try #require(host.scanner.virtualFunction(vf))
        #expect(back.driver == "iavf" && back.interface == "ens785f0v1")
        // numvfs 0 works with a VF on vfio-pci.
        try host.writer.unbind(vf)
        try host.writer.setDriverOverride(vf, .vfioPCI)
        try host.writer.probe(vf)
        try host.writer.setNumVFs(Address.x710, 0)
        #expect(host.kernel.kind(of: "bus/pci/drivers/vfio-pci/0000:3b:02.1") == nil)
        #expect(try host.pf(Address.x710).vfs.isEmpty)
    }

    @Test func nvmeVFsStayUnboundButTakeVFIO() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writer.setNumVFs(Address.nvme, 4)
        let pf = try host.pf(Address.nvme)
        #expect(pf.vfs.map(\.address) == Address.list("0000:d8:00.1", "0000:d8:00.2", "0000:d8:00.3", "0000:d8:00.4"))
        #expect(pf.vfs.allSatisfy { $0.driver == nil && $0.interface == nil && $0.deviceID == "a824" })
        let vf = pf.vfs[0].address
        // As on the real kernel, the bind write succeeds (nvme probes asynchronously) and the VF ends unbound.
        try host.writer.bind(vf, to: DriverName("nvme")!)
        #expect(try host.writer.driver(of: vf) == nil)
        try host.writer.probe(vf)
        #expect(try host.writer.driver(of: vf) == nil)
        try host.writer.setDriverOverride(vf, .vfioPCI)
        try host.writer.bind(vf, to: .vfioPCI)
        #expect(try host.writer.driver(of: vf) == .vfioPCI)
    }

    @Test func unknownDevicesAndDrivers() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let absent = PCIAddress("0000:3b:07.0")!
        expectErrno("ENODEV") { try host.writer.probe(absent) }
        expectErrno("ENODEV") { try host.writer.bind(absent, to: .vfioPCI) }
        expectErrno("ENOENT") { try host.writer.bind(Address.x710, to: DriverName("no-such-driver")!) }
        expectErrno("ENOENT") { try host.writer.setNumVFs(absent, 1) }
        expectErrno("EACCES") { try host.kernel.writeFile("bus/pci/devices/0000:3b:00.0/sriov_totalvfs", "8") }
        expectErrno("EINVAL") { try host.kernel.writeFile("bus/pci/devices/../sriov_numvfs", "1") }
        expectErrno("EINVAL") { try host.kernel.writeFile("/etc/passwd", "x") }
        // A plain writable attribute is just stored.
        try host.kernel.writeFile("bus/pci/devices/0000:3b:00.0/net/ens785f0/mtu", "9000")
        #expect(try host.pf(Address.x710).pf.link?.mtu == 9000)
        // vfio-pci has no id table: without an override it matches nothing.
        let vf = PCIAddress("0000:3b:02.2")!
        try host.writer.unbind(vf)
        expectErrno("ENODEV") { try host.writer.bind(vf, to: .vfioPCI) }
        try host.writer.bind(vf, to: DriverName("iavf")!)
        #expect(try host.writer.driver(of: vf) == DriverName("iavf"))
        // unbind of an unbound device does nothing.
        try host.writer.unbind(Address.nvme)
        try host.writer.unbind(Address.nvme)
    }

    @Test func persistsAcrossReopeningTheBackend() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writer.setNumVFs(Address.x710, 0)
        try host.writer.setNumVFs(Address.x710, 6)
        let vf = PCIAddress("0000:3b:02.5")!
        try host.writer.unbind(vf)
        try host.writer.setDriverOverride(vf, .vfioPCI)
        try host.writer.probe(vf)
        let before = host.scanner.scan()

        let reopened = Sysfs(backend: SimulatedKernel(root: host.root))
        #expect(HostScanner(sysfs: reopened).scan() == before)
        let writer = SRIOVWriter(sysfs: reopened)
        expectErrno("EBUSY") { try writer.setNumVFs(Address.x710, 2) }
        try writer.setNumVFs(Address.x710, 0)
        #expect(HostScanner(sysfs: reopened).scan(pf: Address.x710)?.vfs.isEmpty == true)
    }

    @Test func rebootLeavesNoVFsAndDefaultDrivers() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writer.setNumVFs(Address.nvme, 2)
        try host.writer.unbind(Address.e810)
        try host.writer.setDriversAutoprobe(Address.e810, false)
        let vf = PCIAddress("0000:3b:02.0")!
        try host.writer.unbind(vf)
        try host.writer.setDriverOverride(vf, .vfioPCI)
        try host.writer.probe(vf)
        try host.writeFile(".simulator/vf-settings/0000:3b:00.0.json", "{}")
        try host.writeFile(".simulator/faults.json", #"{"numvfs_cap": {"0000:af:00.0": 3}}"#)

        try SimulatedHost.reboot(at: host.root)
        let snapshot = HostScanner(sysfs: Sysfs(backend: SimulatedKernel(root: host.root))).scan()
        #expect(snapshot.pfs.map(\.pf.address) == [Address.x710, Address.e810, Address.connectX, Address.nvme])
        #expect(snapshot.pfs.allSatisfy { $0.vfs.isEmpty && $0.pf.numVFs == 0 && $0.pf.driversAutoprobe == true })
        #expect(snapshot.pfs.map(\.pf.driver) == ["i40e", "ice", "mlx5_core", "nvme"])
        #expect(snapshot.pfs.map(\.pf.interfaces) == [["ens785f0"], ["ens801f0"], ["ens3f0np0"], []])
        #expect(
            !FileManager.default.fileExists(atPath: host.root.appendingPathComponent(".simulator/vf-settings").path))
        #expect(FileManager.default.fileExists(atPath: host.root.appendingPathComponent(".simulator/faults.json").path))
        #expect(!host.sysfs.deviceExists(vf))
        // The kernel still works after the reboot; the fault file still applies.
        try host.writer.setNumVFs(Address.connectX, 8)
        #expect(try host.writer.readNumVFs(Address.connectX) == 3)
    }

    @Test func numVFsCapEnablesFewerThanAsked() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writeFile(".simulator/faults.json", #"{"numvfs_cap": {"0000:5e:00.0": 3}}"#)
        try host.writer.setNumVFs(Address.e810, 10)
        #expect(try host.writer.readNumVFs(Address.e810) == 3)
        #expect(try host.pf(Address.e810).vfs.count == 3)
    }

    @Test func writeDelayBlocksTheWrite() throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        try host.writeFile(".simulator/faults.json", #"{"write_delay_ms": {"0000:5e:00.0": 300}}"#)
        let clock = ContinuousClock()
        let start = clock.now
        try host.writer.setNumVFs(Address.e810, 1)
        #expect(clock.now - start >= .milliseconds(300))
        #expect(try host.writer.readNumVFs(Address.e810) == 1)
        // Other PFs are not delayed (no assertion on time, only that it works).
        try host.writer.setNumVFs(Address.nvme, 1)
        #expect(try host.writer.readNumVFs(Address.nvme) == 1)
    }

    @Test func concurrentWritersOnDifferentPFs() async throws {
        let host = try SimulatedFixture()
        defer { host.remove() }
        let writer = host.writer
        await withTaskGroup(of: Void.self) { group in
            for (pf, count) in [(Address.e810, 16), (Address.nvme, 4), (Address.connectX, 0)] {
                group.addTask { try? writer.setNumVFs(pf, count) }
            }
        }
        #expect(host.scanner.scan().pfs.map(\.vfs.count) == [4, 16, 0, 4])
        let groups = host.scanner.scan().pfs.flatMap(\.vfs).compactMap(\.iommuGroup)
        #expect(Set(groups).count == groups.count, "no IOMMU group shared")
    }
}
