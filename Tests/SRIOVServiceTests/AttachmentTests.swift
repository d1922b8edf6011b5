import Foundation
import SRIOVCore
import Testing

/// A held VF whose netdev a CNI plugin moved into a pod's network namespace: sysfs no longer lists it under the
/// VF's `net/` folder (as the kernel does), PF-side rtnetlink still reaches the VF. Reads, restore on release and
/// reconciliation go on; the attachment is recorded and shown.
@Suite(.serialized) struct AttachmentTests {
    static let vf = "0000:3b:02.1"

    /// What moving the netdev into another namespace does to sysfs: the VF's `net/<name>` and `class/net/<name>`
    /// vanish. Returns a closure that puts them back (the netdev coming home).
    func moveNetdevAway(_ daemon: TestDaemon, vf: String) throws -> () throws -> Void {
        let devices = daemon.directory.appendingPathComponent("bus/pci/devices/\(vf)").resolvingSymlinksInPath()
        let net = devices.appendingPathComponent("net")
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: net.path).first)
        let away = daemon.directory.appendingPathComponent("moved-\(name)")
        let classLink = daemon.directory.appendingPathComponent("class/net/\(name)")
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: classLink.path)
        try FileManager.default.moveItem(at: net.appendingPathComponent(name), to: away)
        try FileManager.default.removeItem(at: classLink)
        return {
            try FileManager.default.moveItem(at: away, to: net.appendingPathComponent(name))
            try FileManager.default.createSymbolicLink(atPath: classLink.path, withDestinationPath: target)
        }
    }

    @Test func aNetdevInAnotherNamespaceIsReadRestoredAndReconciled() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let created = try await client.request(
            "POST", "/allocations",
            json: ["owner": "cni:c1/net1", "vf": Self.vf, "config": ["vlan": 100, "mac": "02:00:00:00:00:42"]])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.object["id"] as? String)
        #expect(created.object["attachment"] is NSNull, "no attachment until one is recorded")

        let put = try await client.request(
            "PUT", "/allocations/\(id)/attachment",
            json: [
                "netns": "/run/netns/pod-1", "ifname": "net1", "original_ifname": "ens785f0v1", "original_mtu": 1500,
                "original_mac": "02:11:22:33:44:55",
            ])
        #expect(put.status == 200, "\(put.text)")
        let bringBack = try moveNetdevAway(daemon, vf: Self.vf)
        _ = daemon.core.inventory.rescanAll()

        // Reads: the VF is there, without a netdev; its settings come PF-side.
        let vf = try await client.get("/vfs/\(Self.vf)")
        #expect(vf.status == 200)
        #expect(vf.object["interface"] is NSNull, "sysfs no longer lists the netdev")
        let settings = try #require(vf.object["settings"] as? [String: Any])
        #expect(settings["vlan"] as? Int == 100)
        let shown = try await client.get("/allocations/\(id)").object
        let attachment = try #require(shown["attachment"] as? [String: Any])
        #expect(attachment["netns"] as? String == "/run/netns/pod-1")
        #expect(attachment["original_ifname"] as? String == "ens785f0v1")
        #expect(attachment["original_mtu"] as? Int == 1500)

        // Reconciliation with the netdev away: nothing drifts, nothing fails.
        let reconcile = try await client.request("POST", "/reconcile")
        #expect(reconcile.status == 200, "\(reconcile.text)")
        let outcomes = (reconcile.object["actions"] as? [[String: Any]] ?? []).compactMap { $0["outcome"] as? String }
        #expect(!outcomes.contains("failed") && !outcomes.contains("drifted"), "\(reconcile.text)")
        #expect(try await client.get("/allocations/\(id)").object["state"] as? String == "active")

        // Release restores PF-side while the netdev is still away.
        #expect(try await client.request("DELETE", "/allocations/\(id)").status == 204)
        let after = try #require(try await client.get("/vfs/\(Self.vf)").object["settings"] as? [String: Any])
        #expect(after["vlan"] as? Int == 0)
        #expect(after["mac"] as? String != "02:00:00:00:00:42")
        #expect(
            try await client.request(
                "PUT", "/allocations/\(id)/attachment",
                json: [
                    "netns": "/run/netns/pod-1", "ifname": "net1", "original_ifname": "x", "original_mtu": 1500,
                ]
            ).status == 404, "a released allocation takes no attachment")

        try bringBack()
        _ = daemon.core.inventory.rescanAll()
        #expect(try await client.get("/vfs/\(Self.vf)").object["interface"] as? String == "ens785f0v1")
        let audit = try await client.get("/audit?action=allocation.attach").items
        #expect(audit.map { $0["outcome"] as? String } == ["success", "failure"], "the record, then the refusal")
        #expect(audit.allSatisfy { $0["target"] as? String == id })
        await daemon.stop()
    }

    @Test func attachmentsAreValidated() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let created = try await client.request("POST", "/allocations", json: ["owner": "cni:c2/net1", "vf": Self.vf])
        let id = try #require(created.object["id"] as? String)
        let good: [String: Any] = [
            "netns": "/run/netns/p", "ifname": "net1", "original_ifname": "ens785f0v1", "original_mtu": 1500,
        ]
        for (field, value) in [
            ("ifname", "a/b" as Any), ("ifname", "sixteen-bytes-xx"), ("netns", "relative"), ("original_mtu", 20),
            ("original_mac", "zz"),
        ] {
            var body = good
            body[field] = value
            let answer = try await client.request("PUT", "/allocations/\(id)/attachment", json: body)
            #expect(answer.status == 422, "\(field)=\(value): \(answer.text)")
            #expect(answer.object["field"] as? String == field)
        }
        var unknown = good
        unknown["extra"] = 1
        #expect(try await client.request("PUT", "/allocations/\(id)/attachment", json: unknown).status != 200)
        #expect(try await client.request("PUT", "/allocations/\(id)/attachment", json: good).status == 200)
        let cleared = try await client.request("DELETE", "/allocations/\(id)/attachment")
        #expect(cleared.status == 200)
        #expect(cleared.object["attachment"] is NSNull)
        await daemon.stop()
    }
}
