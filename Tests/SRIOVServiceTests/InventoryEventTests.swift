import Foundation
import HostSimulator
import SRIOVCore
import SRIOVHardware
import Testing

/// Kernel uevents refresh the in-memory inventory without waiting for the periodic rescan.
@Suite(.serialized) struct InventoryEventTests {
    @Test func aUEventAboutANewVFRescansItsPF() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let e810 = try #require(PCIAddress("0000:5e:00.0"))
        // Something other than sriovd enables VFs: the inventory does not know yet.
        try SRIOVWriter(sysfs: HardwareHost.simulated(at: daemon.directory).sysfs).setNumVFs(e810, 3)
        #expect(daemon.core.inventory.snapshot.pf(e810)?.pf.numVFs == 0)

        // The kernel announces each new VF; a burst becomes one rescan of the PF.
        let firstVF = try #require(e810.advanced(byRoutingIDs: 8))
        for _ in 0..<3 { daemon.core.inventory.deviceChanged(firstVF, delay: .milliseconds(50)) }
        try await waitUntil("the inventory shows the 3 VFs") {
            daemon.core.inventory.snapshot.pf(e810)?.pf.numVFs == 3
        }
        let listed = try await daemon.client().get("/pfs/\(e810)/vfs")
        #expect(listed.items.count == 3)
        await daemon.stop()
    }

    @Test func aVFCountChangeRereadsThePFOnceItsLinkHasSettled() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let e810 = try #require(PCIAddress("0000:5e:00.0"))
        let client = try daemon.client()
        #expect(try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 4]).status == 201)
        #expect(daemon.core.inventory.snapshot.pf(e810)?.pf.link?.state == "up")
        // The driver's reset takes the link down only after the write returned (igb does, for a few seconds):
        // no uevent says so, and this daemon runs no periodic rescan.
        let operstate = daemon.directory.appendingPathComponent("bus/pci/devices/\(e810)").resolvingSymlinksInPath()
            .appendingPathComponent("net/ens801f0/operstate")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: operstate.path)
        try Data("down\n".utf8).write(to: operstate)
        try await waitUntil(timeout: .seconds(4), interval: .milliseconds(100), "the PF is read again") {
            let link = try await client.get("/pfs/\(e810)").object["link"] as? [String: Any]
            return link?["state"] as? String == "down"
        }
        await daemon.stop()
    }

    @Test func aUEventAboutAnUnknownDeviceRescansEverything() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let x710 = try #require(PCIAddress("0000:3b:00.0"))
        #expect(daemon.core.inventory.snapshot.pf(x710)?.pf.numVFs == 4)
        try SRIOVWriter(sysfs: HardwareHost.simulated(at: daemon.directory).sysfs).setNumVFs(x710, 0)
        daemon.core.inventory.deviceChanged(nil, delay: .milliseconds(10))
        try await waitUntil("the inventory shows the X710 without VFs") {
            daemon.core.inventory.snapshot.pf(x710)?.pf.numVFs == 0
        }
        await daemon.stop()
    }
}
