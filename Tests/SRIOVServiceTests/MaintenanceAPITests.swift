import Foundation
import HostSimulator
import SRIOVCore
import SRIOVHardware
import SRIOVService
import SRIOVStore
import Testing

/// Cordon, moves, drain, managed VF ranges and identity, over real sockets, a real SQLite file and the simulated
/// host.
@Suite(.serialized) struct MaintenanceAPITests {
    static let x710 = "0000:3b:00.0"
    static let e810 = "0000:5e:00.0"
    static let mlx = "0000:af:00.0"
    static var identity: [String: Any] { ["mac": "02:aa:bb:cc:dd:01", "vlan": 42, "qos": 3, "trust": true] }

    @Test func cordonKeepsNewAllocationsOffThePFAndIsShownStoredAndAudited() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let cordon = try await client.request("POST", "/pfs/\(Self.x710)/cordon")
        #expect(cordon.status == 200, "\(cordon.text)")
        #expect(cordon.object["cordoned"] as? Bool == true)

        let pfs = try await client.get("/pfs")
        #expect(pfs.items.first { $0["address"] as? String == Self.x710 }?["cordoned"] as? Bool == true)
        #expect(pfs.items.first { $0["address"] as? String == Self.mlx }?["cordoned"] as? Bool == false)
        let capacity = try await client.get("/capacity")
        let x710 = try #require(
            (capacity.object["pfs"] as? [[String: Any]])?.first { $0["pf"] as? String == Self.x710 })
        #expect(x710["cordoned"] as? Int == 4 && x710["free"] as? Int == 0)

        let explicit = try await client.request("POST", "/allocations", json: ["owner": "vm:a", "pf": Self.x710])
        #expect(explicit.status == 409)
        #expect(explicit.object["type"] as? String == "urn:sriovd:problem:pf-cordoned")
        let byVF = try await client.request("POST", "/allocations", json: ["owner": "vm:a", "vf": "0000:3b:02.0"])
        #expect(byVF.object["type"] as? String == "urn:sriovd:problem:pf-cordoned")
        let onlyCordoned = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:a", "selector": ["driver": "i40e"]])
        #expect(onlyCordoned.object["type"] as? String == "urn:sriovd:problem:no-free-vf")
        let elsewhere = try await client.request("POST", "/allocations", json: ["owner": "vm:a", "selector": [:]])
        #expect(elsewhere.status == 201 && elsewhere.object["pf"] as? String == Self.mlx, "\(elsewhere.text)")

        let audit = try await client.get("/audit?action=pf.cordon")
        #expect(audit.items.count == 1 && audit.items.first?["target"] as? String == Self.x710)
        await daemon.stop()

        // Stored: a restart keeps it; lifting it lets allocations in again.
        let again = try await TestDaemon(directory: daemon.directory)
        let client2 = try again.client()
        #expect((try await client2.get("/pfs/\(Self.x710)")).object["cordoned"] as? Bool == true)
        #expect((try await client2.request("DELETE", "/pfs/\(Self.x710)/cordon")).object["cordoned"] as? Bool == false)
        let allowed = try await client2.request("POST", "/allocations", json: ["owner": "vm:b", "pf": Self.x710])
        #expect(allowed.status == 201, "\(allowed.text)")
        #expect((try await client2.get("/audit?action=pf.uncordon")).items.count == 1)
        await again.stop()
    }

    /// The allocation keeps id, owner, labels and identity on a VF of another PF; the old VF is restored; the
    /// generation grows past the old one, so a release naming the old generation is refused and touches nothing.
    @Test func moveKeepsIdentityRestoresTheOldVFAndFencesTheOldGeneration() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        #expect(try await client.request("POST", "/pfs/\(Self.e810)/vfs", json: ["count": 4]).status == 201)
        let created = try await client.request(
            "POST", "/allocations",
            json: ["owner": "vm:mover", "pf": Self.x710, "labels": ["app": "db"], "config": Self.identity])
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.object["id"] as? String)
        let oldVF = try #require(created.object["vf"] as? String)
        let oldGeneration = try #require(created.object["generation"] as? Int)

        let moved = try await client.request("POST", "/allocations/\(id)/move", json: ["pf": Self.e810])
        #expect(moved.status == 200, "\(moved.text)")
        #expect(moved.object["id"] as? String == id && moved.object["owner"] as? String == "vm:mover")
        #expect((moved.object["labels"] as? [String: String]) == ["app": "db"])
        #expect(moved.object["pf"] as? String == Self.e810)
        let newVF = try #require(moved.object["vf"] as? String)
        #expect(newVF != oldVF)
        let newGeneration = try #require(moved.object["generation"] as? Int)
        #expect(newGeneration > oldGeneration)

        let settings = try #require((try await client.get("/vfs/\(newVF)")).object["settings"] as? [String: Any])
        #expect(settings["mac"] as? String == "02:aa:bb:cc:dd:01" && settings["vlan"] as? Int == 42)
        #expect(settings["qos"] as? Int == 3 && settings["trust"] as? Bool == true)
        let old = try await client.get("/vfs/\(oldVF)")
        let oldSettings = try #require(old.object["settings"] as? [String: Any])
        #expect(oldSettings["mac"] as? String == "00:00:00:00:00:00" && oldSettings["vlan"] as? Int == 0)
        #expect(old.object["status"] as? String == "free")

        let events = try await client.get("/audit?action=allocation.move&target=\(id)")
        let event = try #require(events.items.last)
        let details = try #require(event["details"] as? [String: Any])
        #expect(details["from_vf"] as? String == oldVF && details["to_vf"] as? String == newVF)

        let stale = try await client.request("DELETE", "/allocations/\(id)?generation=\(oldGeneration)")
        #expect(stale.status == 409)
        #expect(stale.object["type"] as? String == "urn:sriovd:problem:generation-mismatch")
        #expect((try await client.get("/allocations/\(id)")).object["state"] as? String == "active")
        let stillSet = try #require((try await client.get("/vfs/\(newVF)")).object["settings"] as? [String: Any])
        #expect(stillSet["vlan"] as? Int == 42)
        let release = try await client.request("DELETE", "/allocations/\(id)?generation=\(newGeneration)")
        #expect(release.status == 204, "\(release.text)")
        await daemon.stop()
    }

    /// A write the kernel refuses during the move leaves the allocation on its old VF, unchanged, and the would-be
    /// new VF as it was.
    @Test func aRefusedWriteLeavesTheAllocationWhereItWas() async throws {
        let faults = FaultInjector()
        let daemon = try await TestDaemon(hardware: { faults.host(at: $0) })
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        #expect(try await client.request("POST", "/pfs/\(Self.e810)/vfs", json: ["count": 2]).status == 201)
        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:x", "pf": Self.x710, "config": Self.identity])
        let id = try #require(created.object["id"] as? String)
        let oldVF = try #require(created.object["vf"] as? String)
        // Exactly the second write of the move (after the new VF's first setting) is refused.
        faults.refuse(from: 2)
        faults.at(write: 2) { faults.stopRefusing() }
        let moved = try await client.request("POST", "/allocations/\(id)/move", json: ["pf": Self.e810])
        faults.stopRefusing()
        #expect(moved.status >= 400, "\(moved.text)")
        let after = try await client.get("/allocations/\(id)")
        #expect(after.object["vf"] as? String == oldVF && after.object["generation"] as? Int == 1)
        let settings = try #require((try await client.get("/vfs/\(oldVF)")).object["settings"] as? [String: Any])
        #expect(settings["mac"] as? String == "02:aa:bb:cc:dd:01" && settings["vlan"] as? Int == 42)
        for vf in (try await client.get("/pfs/\(Self.e810)/vfs")).items {
            let state = try #require(
                (try await client.get("/vfs/\(vf["address"] as! String)")).object["settings"] as? [String: Any])
            #expect(state["vlan"] as? Int == 0 && state["mac"] as? String == "00:00:00:00:00:00")
        }
        await daemon.stop()
    }

    @Test func anAttachedAllocationIsRefusedWithAClearDetail() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let created = try await client.request("POST", "/allocations", json: ["owner": "k8s:pod", "pf": Self.x710])
        let id = try #require(created.object["id"] as? String)
        let put = try await client.request(
            "PUT", "/allocations/\(id)/attachment",
            json: [
                "netns": "/run/netns/pod-1", "ifname": "net1", "original_ifname": "ens785f0v0", "original_mtu": 1500,
            ])
        #expect(put.status == 200, "\(put.text)")
        let moved = try await client.request("POST", "/allocations/\(id)/move", json: [:])
        #expect(moved.status == 409)
        #expect(moved.object["type"] as? String == "urn:sriovd:problem:allocation-attached")
        #expect((moved.object["detail"] as? String)?.contains("detach it first") == true)
        #expect(
            (try await client.get("/audit?action=allocation.move&target=\(id)")).items.first?["outcome"] as? String
                == "failure")
        await daemon.stop()
    }

    /// Drain as an operation: cordons, moves what can move, names what stays and why.
    @Test func drainMovesEveryoneItCanAndNamesTheRest() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        #expect(try await client.request("POST", "/pfs/\(Self.e810)/vfs", json: ["count": 8]).status == 201)
        var ids: [String] = []
        for n in 0..<3 {
            let created = try await client.request(
                "POST", "/allocations", json: ["owner": "vm:\(n)", "pf": Self.x710, "config": ["vlan": 100 + n]])
            ids.append(try #require(created.object["id"] as? String))
        }
        let attached = ids[2]
        _ = try await client.request(
            "PUT", "/allocations/\(attached)/attachment",
            json: ["netns": "/run/netns/p", "ifname": "net1", "original_ifname": "ens785f0v2", "original_mtu": 1500])
        let started = try await client.request(
            "POST", "/pfs/\(Self.x710)/drain", headers: ["Prefer": "respond-async"])
        #expect(started.status == 202, "\(started.text)")
        let location = try #require(started.object["location"] as? String)
        var operation: [String: Any] = [:]
        try await waitUntil("the drain operation ends") {
            operation = try await client.get(location + "?wait=5").object
            return operation["state"] as? String == "succeeded" || operation["state"] as? String == "failed"
        }
        #expect(operation["state"] as? String == "succeeded", "\(operation)")
        let result = try #require(operation["result"] as? [String: Any])
        #expect(result["moved"] as? Int == 2 && result["stayed"] as? Int == 1)
        let fates = try #require(result["allocations"] as? [[String: Any]])
        let stayed = try #require(fates.first { $0["id"] as? String == attached })
        #expect(stayed["outcome"] as? String == "stayed")
        #expect((stayed["reason"] as? String)?.hasPrefix("allocation-attached") == true)
        for fate in fates where fate["id"] as? String != attached {
            #expect(fate["outcome"] as? String == "moved" && fate["to_pf"] as? String != Self.x710)
            let allocation = try await client.get("/allocations/\(fate["id"] as! String)")
            #expect(allocation.object["vf"] as? String == fate["to_vf"] as? String)
        }
        #expect((try await client.get("/pfs/\(Self.x710)")).object["cordoned"] as? Bool == true)
        await daemon.stop()
    }

    @Test func vfsOutsideTheManagedRangeAreExternalAndUntouched() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let put = try await client.request("PUT", "/pfs/\(Self.x710)/managed", json: ["vfs": "0-1"])
        #expect(put.status == 200 && put.object["managed_vfs"] as? String == "0-1", "\(put.text)")
        let bad = try await client.request("PUT", "/pfs/\(Self.x710)/managed", json: ["vfs": "3-1"])
        #expect(bad.status == 422)
        let vfs = (try await client.get("/pfs/\(Self.x710)")).object["vfs"] as? [[String: Any]] ?? []
        #expect(vfs.map { $0["status"] as? String } == ["free", "free", "external", "external"])
        let external = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:a", "vf": vfs[2]["address"] as! String])
        #expect(external.object["type"] as? String == "urn:sriovd:problem:vf-external")
        for n in 0..<2 {
            let ok = try await client.request("POST", "/allocations", json: ["owner": "vm:\(n)", "pf": Self.x710])
            #expect(ok.status == 201 && (ok.object["vf_index"] as? Int).map { $0 < 2 } == true)
        }
        let full = try await client.request("POST", "/allocations", json: ["owner": "vm:c", "pf": Self.x710])
        #expect(full.object["type"] as? String == "urn:sriovd:problem:no-free-vf")
        let write = try await client.request("PATCH", "/vfs/\(vfs[3]["address"] as! String)", json: ["vlan": 7])
        #expect(write.object["type"] as? String == "urn:sriovd:problem:vf-external")
        let resize = try await client.request("POST", "/pfs/\(Self.x710)/vfs", json: ["count": 8])
        #expect(resize.object["type"] as? String == "urn:sriovd:problem:pf-partly-managed")
        let narrower = try await client.request("PUT", "/pfs/\(Self.x710)/managed", json: ["vfs": "0"])
        #expect(narrower.object["type"] as? String == "urn:sriovd:problem:vfs-held")
        let capacity = try await client.get("/capacity")
        let x710 = try #require(
            (capacity.object["pfs"] as? [[String: Any]])?.first { $0["pf"] as? String == Self.x710 })
        #expect(x710["reserved"] as? Int == 2 && x710["held"] as? Int == 2)
        await daemon.stop()
    }

    /// What another host needs: GET identity, then POST /allocations with it recreates owner, labels and identity.
    @Test func identityRecreatesTheAllocationElsewhere() async throws {
        let source = try await TestDaemon()
        let target = try await TestDaemon()
        defer {
            source.removeFiles()
            target.removeFiles()
        }
        let a = try source.client()
        let created = try await a.request(
            "POST", "/allocations",
            json: [
                "owner": "vm:migrating", "pf": Self.x710, "labels": ["vm": "db-1"],
                "config": Self.identity,
            ])
        let id = try #require(created.object["id"] as? String)
        let identity = try await a.get("/allocations/\(id)/identity")
        #expect(identity.status == 200)
        #expect((identity.object["config"] as? [String: Any])?["mac"] as? String == "02:aa:bb:cc:dd:01")
        let b = try target.client()
        let recreated = try await b.request(
            "POST", "/allocations", json: ["pf": Self.mlx, "identity": identity.object])
        #expect(recreated.status == 201, "\(recreated.text)")
        #expect(recreated.object["owner"] as? String == "vm:migrating")
        #expect((recreated.object["labels"] as? [String: String]) == ["vm": "db-1"])
        let vf = try #require(recreated.object["vf"] as? String)
        let settings = try #require((try await b.get("/vfs/\(vf)")).object["settings"] as? [String: Any])
        #expect(settings["mac"] as? String == "02:aa:bb:cc:dd:01" && settings["vlan"] as? Int == 42)
        await source.stop()
        await target.stop()
    }

    /// A move cut off after its writes and before its completion (as kill -9 would leave it): the identity on the
    /// new VF, the old VF restored, the intent open. The next start rolls it back: the allocation stays on its old
    /// VF with its identity put back, and the new VF returns to its baseline.
    @Test func aMoveCutOffBeforeItsCommitIsRolledBackAtTheNextStart() async throws {
        let first = try await TestDaemon()
        defer { first.removeFiles() }
        let client = try first.client()
        #expect(try await client.request("POST", "/pfs/\(Self.e810)/vfs", json: ["count": 2]).status == 201)
        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:cut", "pf": Self.x710, "config": Self.identity])
        let id = try #require(created.object["id"] as? String)
        let snapshot = first.core.inventory.snapshot
        let (fromPF, fromVF) = try #require(snapshot.vf(PCIAddress(created.object["vf"] as! String)!))
        let toEntry = try #require(snapshot.pf(PCIAddress(Self.e810)!))
        let toVF = try #require(toEntry.vfs.first)
        await first.stop()

        // What the move had done when it was cut off, written as it writes it.
        let controller = VFController(host: HardwareHost.simulated(at: first.directory))
        let identity = VFConfig(mac: "02:aa:bb:cc:dd:01", vlan: 42, qos: 3, trust: true)
        let toBaseline = try controller.state(of: toVF, pf: toEntry.pf)
        try controller.apply(identity, to: toVF, pf: toEntry.pf, onWrite: { _ in })
        let factory = VFState(
            mac: "00:00:00:00:00:00", vlan: 0, qos: 0, vlanProto: .dot1Q, spoofCheck: true, trust: false,
            linkState: .auto, minTxRate: 0, maxTxRate: 0, driver: fromVF.driver)
        try controller.restore(factory, vf: fromVF, pf: fromPF, onWrite: { _ in })
        func json(_ value: some Encodable) throws -> Any {
            try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value))
        }
        let payload: [String: Any] = [
            "from": [
                "pf": fromPF.address.description, "vf": fromVF.address.description, "vf_index": fromVF.index,
                "restore_to": try json(factory),
            ],
            "to": [
                "pf": toEntry.pf.address.description, "vf": toVF.address.description, "vf_index": toVF.index,
                "restore_to": try json(toBaseline),
            ],
            "identity": try json(identity), "generation": 1,
        ]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: payload), as: UTF8.self)
        let store = try Store(path: first.directory.appendingPathComponent("sriovd.db").path)
        _ = try await store.write { tx in try tx.beginIntent(kind: .allocationMove, target: id, payload: text) }
        store.close()

        let second = try await TestDaemon(directory: first.directory)
        let client2 = try second.client()
        let after = try await client2.get("/allocations/\(id)")
        #expect(after.object["vf"] as? String == fromVF.address.description && after.object["generation"] as? Int == 1)
        let old = try #require((try await client2.get("/vfs/\(fromVF.address)")).object["settings"] as? [String: Any])
        #expect(
            old["mac"] as? String == "02:aa:bb:cc:dd:01" && old["vlan"] as? Int == 42 && old["trust"] as? Bool == true)
        let new = try #require((try await client2.get("/vfs/\(toVF.address)")).object["settings"] as? [String: Any])
        #expect(new["mac"] as? String == "00:00:00:00:00:00" && new["vlan"] as? Int == 0)
        let recovered = try await client2.get("/audit?action=allocation.move.recover&target=\(id)")
        let outcome = (recovered.items.first?["details"] as? [String: Any])?["outcome"] as? String
        #expect(outcome?.hasPrefix("rolled back") == true, "\(recovered.text)")
        await second.stop()
    }
}
