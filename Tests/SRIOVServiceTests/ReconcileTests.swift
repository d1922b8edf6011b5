import Foundation
import HostSimulator
import SRIOVCore
import SRIOVHardware
import Testing

/// Startup reconciliation and reboot recovery, over the simulated kernel and a real SQLite file that both
/// survive daemon restarts.
@Suite(.serialized) struct ReconcileTests {
    static let e810 = "0000:5e:00.0"
    static let x710 = "0000:3b:00.0"

    /// Two allocations with settings (one with vfio-pci) on a fresh host; returns the daemon, stopped.
    func prepare() async throws -> (TestDaemon, first: [String: Any], second: [String: Any]) {
        let daemon = try await TestDaemon()
        let client = try daemon.client()
        #expect(try await client.request("POST", "/pfs/\(Self.e810)/vfs", json: ["count": 4]).status == 201)
        let first = try await client.request(
            "POST", "/allocations",
            json: [
                "owner": "vm:a", "pf": Self.e810,
                "config": ["mac": "02:aa:00:00:00:01", "vlan": 42, "qos": 1, "trust": true],
            ])
        let second = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:b", "pf": Self.x710, "config": ["driver": "vfio-pci"]])
        #expect(first.status == 201)
        #expect(second.status == 201)
        await daemon.stop()
        return (daemon, first.object, second.object)
    }

    @Test func bringsVFsSettingsAndDriversBackAfterAReboot() async throws {
        let (stopped, first, second) = try await prepare()
        defer { stopped.removeFiles() }
        try SimulatedHost.reboot(at: stopped.directory)

        let daemon = try await TestDaemon(directory: stopped.directory)
        let client = try daemon.client()
        #expect(try await client.get("/pfs/\(Self.e810)").object["num_vfs"] as? Int == 4)
        #expect(try await client.get("/pfs/\(Self.x710)").object["num_vfs"] as? Int == 4, "adopted VFs come back too")
        let vf1 = try #require(first["vf"] as? String)
        let settings = try #require(try await client.get("/vfs/\(vf1)").object["settings"] as? [String: Any])
        #expect(settings["mac"] as? String == "02:aa:00:00:00:01")
        #expect(settings["vlan"] as? Int == 42)
        #expect(settings["qos"] as? Int == 1)
        #expect(settings["trust"] as? Bool == true)
        let vf2 = try #require(second["vf"] as? String)
        #expect(try await client.get("/vfs/\(vf2)").object["driver"] as? String == "vfio-pci")
        #expect(try await client.get("/vfs/\(vf1)").object["address"] as? String == vf1, "same PCI address")
        for id in [first["id"], second["id"]].compactMap({ $0 as? String }) {
            #expect(try await client.get("/allocations/\(id)").object["state"] as? String == "active")
        }
        let report = try await client.get("/reconcile").object
        let kinds = (report["actions"] as? [[String: Any]] ?? []).map { "\($0["kind"]!) \($0["outcome"]!)" }
        #expect(kinds.contains("pf.vfs.recreate done"))
        #expect(kinds.filter { $0 == "allocation.reapply done" }.count == 2)
        let audit = try await client.get("/audit?actor=reconciler&limit=500").items
        #expect(audit.contains { $0["action"] as? String == "hw.sysfs.write" })
        #expect(audit.contains { $0["action"] as? String == "hw.netlink.write" })
        await daemon.stop()
    }

    @Test func aRestartWithNothingToDoWritesNoHardware() async throws {
        let (stopped, _, _) = try await prepare()
        defer { stopped.removeFiles() }
        var daemon = try await TestDaemon(directory: stopped.directory)  // adopts the X710's VFs
        await daemon.stop()
        daemon = try await TestDaemon(directory: stopped.directory)
        let client = try daemon.client()
        let runs = try await client.get("/audit?action=reconcile.run&limit=500").items
        let lastRun = try #require(runs.last?["id"] as? Int)
        let since = try await client.get("/audit?after=\(lastRun - 1)&limit=500").items
        #expect(since.count == 1, "only the run itself was recorded: \(since.map { $0["action"] ?? "" })")
        let report = try await client.get("/reconcile").object
        #expect((report["actions"] as? [Any])?.isEmpty == true)
        await daemon.stop()
    }

    @Test func keepsAllocationsOfAMissingPFAsOrphanedAndReadoptsThem() async throws {
        let (stopped, first, _) = try await prepare()
        defer { stopped.removeFiles() }
        let link = stopped.directory.appendingPathComponent("bus/pci/devices/\(Self.e810)")
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: link.path)
        try FileManager.default.removeItem(at: link)

        var daemon = try await TestDaemon(directory: stopped.directory)
        var client = try daemon.client()
        let id = try #require(first["id"] as? String)
        #expect(try await client.get("/allocations/\(id)").object["state"] as? String == "orphaned")
        #expect(try await client.get("/allocations?state=orphaned").items.count == 1)
        await daemon.stop()

        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: target)
        daemon = try await TestDaemon(directory: stopped.directory)
        client = try daemon.client()
        #expect(try await client.get("/allocations/\(id)").object["state"] as? String == "active")
        await daemon.stop()
    }

    @Test func reappliesSettingsChangedByHand() async throws {
        let (stopped, first, _) = try await prepare()
        defer { stopped.removeFiles() }
        let host = HardwareHost.simulated(at: stopped.directory)
        let index = try #require(first["vf_index"] as? Int)
        try host.netlink.apply(.mac([2, 0xbb, 0, 0, 0, 9]), vf: index, interface: "ens801f0")

        let daemon = try await TestDaemon(directory: stopped.directory)
        let client = try daemon.client()
        let id = try #require(first["id"] as? String)
        #expect(try await client.get("/allocations/\(id)").object["state"] as? String == "active")
        let vf = try #require(first["vf"] as? String)
        let settings = try await client.get("/vfs/\(vf)").object["settings"] as? [String: Any]
        #expect(settings?["mac"] as? String == "02:aa:00:00:00:01", "the recorded MAC is back")
        let report = try await client.get("/reconcile").object
        let reapply = (report["actions"] as? [[String: Any]] ?? []).first { $0["target"] as? String == id }
        #expect(reapply?["kind"] as? String == "allocation.reapply")
        #expect((reapply?["detail"] as? String)?.contains("mac") == true)
        await daemon.stop()
    }

    @Test func reportsADriverNobodyAskedForAsDrifted() async throws {
        let (stopped, first, _) = try await prepare()
        defer { stopped.removeFiles() }
        let writer = SRIOVWriter(sysfs: HardwareHost.simulated(at: stopped.directory).sysfs)
        let text = try #require(first["vf"] as? String)
        let vf = try #require(PCIAddress(text))
        try writer.unbind(vf)
        try writer.setDriverOverride(vf, .vfioPCI)
        try writer.probe(vf)

        let daemon = try await TestDaemon(directory: stopped.directory)
        let client = try daemon.client()
        let id = try #require(first["id"] as? String)
        #expect(try await client.get("/allocations/\(id)").object["state"] as? String == "drifted")
        let report = try await client.get("/reconcile").object
        let drift = (report["actions"] as? [[String: Any]] ?? []).first { $0["kind"] as? String == "allocation.drift" }
        #expect((drift?["detail"] as? String)?.contains("vfio-pci") == true)
        #expect(try await client.get("/vfs/\(text)").object["driver"] as? String == "vfio-pci", "left as found")
        await daemon.stop()
    }
}
