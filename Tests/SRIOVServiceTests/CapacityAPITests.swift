import Foundation
import SRIOVCore
import SRIOVService
import Testing

/// Capacity, placement, quotas and leases over real sockets, a real SQLite file and the simulated host.
@Suite(.serialized) struct CapacityAPITests {
    static let x710 = "0000:3b:00.0"
    static let e810 = "0000:5e:00.0"
    static let mlx = "0000:af:00.0"

    @Test func capacityCountsTheHostAndItsGroupsAndIsAGauge() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let before = try await client.get("/capacity")
        #expect(before.status == 200)
        let host = try #require(before.object["host"] as? [String: Any])
        #expect(host["total_vfs"] as? Int == 64 + 128 + 8 + 4)
        #expect(host["enabled"] as? Int == 6)
        #expect(host["free"] as? Int == 6)
        #expect(host["headroom"] as? Int == 204 - 6)
        #expect(host["reserved"] as? Int == 0 && host["cordoned"] as? Int == 0)

        let created = try await client.request("POST", "/allocations", json: ["owner": "vm:a", "pf": Self.mlx])
        #expect(created.status == 201)
        let after = try await client.get("/capacity")
        #expect((after.object["host"] as? [String: Any])?["held"] as? Int == 1)
        let pfs = try #require(after.object["pfs"] as? [[String: Any]])
        let mlx = try #require(pfs.first { $0["pf"] as? String == Self.mlx })
        #expect(mlx["held"] as? Int == 1 && mlx["free"] as? Int == 1 && mlx["numa_node"] as? Int == 1)
        #expect(mlx["driver"] as? String == "mlx5_core" && mlx["vendor_device"] as? String == "15b3:101d")
        let nodes = try #require(after.object["numa_nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["numa_node"] as? Int } == [0, 1])
        #expect(nodes.map { $0["held"] as? Int } == [0, 1])
        #expect(nodes.map { $0["enabled"] as? Int } == [4, 2])
        let drivers = try #require(after.object["drivers"] as? [[String: Any]])
        #expect(drivers.compactMap { $0["driver"] as? String } == ["i40e", "ice", "mlx5_core", "nvme"])
        #expect((after.object["devices"] as? [[String: Any]])?.count == 4)

        let metrics = try await client.get("/metrics").text
        #expect(
            metrics.contains(
                #"sriovd_capacity_vfs{driver="mlx5_core",kind="held",numa_node="1",pf="0000:af:00.0",vendor_device="15b3:101d"} 1"#
            ))
        #expect(metrics.contains(#"kind="headroom",numa_node="0",pf="0000:5e:00.0",vendor_device="8086:159b"} 128"#))
        await daemon.stop()
    }

    /// 50 clients at once against a quota of 10: the check runs in the transaction that records the allocation,
    /// so exactly 10 succeed and the 40 others are refused naming the quota and its use.
    @Test func fiftyConcurrentAllocationsAgainstAQuotaOfTen() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let admin = try daemon.client()
        #expect(try await admin.request("POST", "/pfs/\(Self.e810)/vfs", json: ["count": 64]).status == 201)
        let put = try await admin.request("PUT", "/quotas/tenant%3A", json: ["max_vfs": 10])
        #expect(put.status == 200, "\(put.text)")
        #expect(put.object["owner_prefix"] as? String == "tenant:" && put.object["used"] as? Int == 0)

        let port = daemon.port
        let statuses = try await withThrowingTaskGroup(of: TestClient.Response.self) { group in
            for n in 0..<50 {
                group.addTask {
                    try await TestClient(port: port).request(
                        "POST", "/allocations", json: ["owner": "tenant:pod-\(n)", "selector": ["driver": "ice"]])
                }
            }
            return try await group.reduce(into: [TestClient.Response]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0.status == 201 }.count == 10)
        let refused = statuses.filter { $0.status == 409 }
        #expect(refused.count == 40)
        for response in refused {
            #expect(response.object["type"] as? String == "urn:sriovd:problem:quota-exceeded")
            #expect(response.object["quota"] as? String == "tenant:")
            #expect(response.object["limit"] as? Int == 10 && response.object["used"] as? Int == 10)
        }
        let quotas = try await admin.get("/quotas")
        #expect(quotas.items.first?["used"] as? Int == 10)
        #expect(try await admin.get("/allocations?limit=500").items.count == 10)
        let failures = try await admin.get("/audit?action=allocation.create&limit=500").items.filter {
            ($0["error"] as? String)?.hasPrefix("quota-exceeded") == true
        }
        #expect(failures.count == 40, "every refusal is audited")

        // The longest matching prefix governs: a team with its own quota is not held to tenant:'s.
        #expect(try await admin.request("PUT", "/quotas/tenant%3Abig%2F", json: ["max_vfs": 1]).status == 200)
        let big = try await admin.request(
            "POST", "/allocations", json: ["owner": "tenant:big/one", "selector": ["driver": "ice"]])
        #expect(big.status == 201)
        let bigAgain = try await admin.request(
            "POST", "/allocations", json: ["owner": "tenant:big/two", "selector": ["driver": "ice"]])
        #expect(bigAgain.object["quota"] as? String == "tenant:big/")
        // tenant:big/one is its own quota's, not tenant:'s, which still counts 10.
        #expect(try await admin.get("/quotas").items.map { $0["used"] as? Int } == [10, 1])
        // Releasing one makes room again; removing the quota lifts it.
        let held = try await admin.get("/allocations?limit=500").items.compactMap { $0["id"] as? String }
        #expect(try await admin.request("DELETE", "/allocations/\(held[0])").status == 204)
        #expect(
            try await admin.request("POST", "/allocations", json: ["owner": "tenant:late", "pf": Self.e810]).status
                == 201)
        #expect(try await admin.request("DELETE", "/quotas/tenant%3A").status == 204)
        #expect(try await admin.request("DELETE", "/quotas/tenant%3A").status == 404)
        #expect(
            try await admin.request("POST", "/allocations", json: ["owner": "tenant:later", "pf": Self.e810]).status
                == 201)
        let audit = try await admin.get("/audit?target=quota:tenant:").items.map { $0["action"] as? String }
        #expect(audit == ["quota.set", "quota.delete", "quota.delete"])
        await daemon.stop()
    }

    @Test func perNUMANodeQuotaSteersAndRefuses() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let put = try await client.request("PUT", "/quotas/vm%3A", json: ["max_vfs": 10, "per_numa_node": ["1": 1]])
        #expect(put.status == 200)
        let first = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:a", "selector": ["numa_node": 1]])
        #expect(first.object["pf"] as? String == Self.mlx)
        let hard = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:b", "selector": ["numa_node": 1]])
        #expect(hard.status == 409)
        #expect(hard.object["type"] as? String == "urn:sriovd:problem:quota-exceeded")
        #expect(hard.object["numa_node"] as? Int == 1 && hard.object["limit"] as? Int == 1)
        // Soft: the preferred node is full under the quota, so another node is taken.
        let soft = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:c", "selector": ["prefer_numa_node": 1]])
        #expect(soft.status == 201)
        #expect(soft.object["pf"] as? String == Self.x710)
        let quota = try #require(try await client.get("/quotas").items.first)
        #expect(quota["used"] as? Int == 2)
        let nodes = try #require(quota["per_numa_node"] as? [[String: Any]])
        #expect(nodes.map { $0["used"] as? Int } == [1, 1])
        #expect(nodes.map { $0["max_vfs"] as? Int } == [nil, 1])
        for bad: [String: Any] in [
            ["max_vfs": -1], ["max_vfs": 2, "per_numa_node": ["x": 1]], ["max_vfs": 2, "per_numa_node": ["0": 3]], [:],
        ] {
            #expect(try await client.request("PUT", "/quotas/vm%3A", json: bad).status == 422, "\(bad)")
        }
        await daemon.stop()
    }

    /// Two VFs of a bond go on different PFs; with only one PF to choose from the second is refused, saying why.
    @Test func antiAffinityWithTwoPFsAndWithOne() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        func allocate(_ owner: String, _ selector: [String: Any], bond: String) async throws -> TestClient.Response {
            try await client.request(
                "POST", "/allocations", json: ["owner": owner, "selector": selector, "labels": ["bond": bond]])
        }
        let anti: [String: Any] = ["anti_affinity": ["label": "bond"]]
        let first = try await allocate("vm:bond-a", anti, bond: "b1")
        let second = try await allocate("vm:bond-b", anti, bond: "b1")
        #expect(first.status == 201 && second.status == 201)
        #expect(first.object["pf"] as? String == Self.x710)
        #expect(second.object["pf"] as? String == Self.mlx)
        let placement = try #require(second.object["placement"] as? [String: Any])
        #expect(placement["avoided_pfs"] as? [String] == [Self.x710])
        #expect((placement["reason"] as? String)?.contains("holding bond=b1") == true)
        // Another bond is free to share those PFs.
        #expect(try await allocate("vm:other", anti, bond: "b2").object["pf"] as? String == Self.x710)

        // One PF only (the X710 by driver): the second VF of bond b3 has nowhere to go.
        let oneA = try await allocate("vm:b3-a", anti.merging(["driver": "i40e"]) { $1 }, bond: "b3")
        #expect(oneA.status == 201)
        let oneB = try await allocate("vm:b3-b", anti.merging(["driver": "i40e"]) { $1 }, bond: "b3")
        #expect(oneB.status == 409)
        #expect(oneB.object["type"] as? String == "urn:sriovd:problem:anti-affinity-unsatisfiable")
        #expect(oneB.object["pfs"] as? [String] == [Self.x710])
        #expect((oneB.object["detail"] as? String)?.contains("labelled bond=b3") == true)
        let refusal = try await client.get("/audit?action=allocation.create").items.last
        #expect(refusal?["outcome"] as? String == "failure")
        #expect((refusal?["error"] as? String)?.hasPrefix("anti-affinity-unsatisfiable") == true)

        // The label anti_affinity names must be on the allocation.
        let unlabelled = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:x", "selector": anti])
        #expect(unlabelled.status == 422)
        #expect(unlabelled.object["field"] as? String == "selector.anti_affinity.label")
        await daemon.stop()
    }

    @Test func spreadAndPackPlaceAndRecordWhy() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        #expect(try await client.request("POST", "/pfs/\(Self.e810)/vfs", json: ["count": 4]).status == 201)
        var pfs: [String] = []
        for n in 0..<3 {
            let created = try await client.request(
                "POST", "/allocations", json: ["owner": "vm:s\(n)", "selector": ["placement": "spread"]])
            pfs.append(created.object["pf"] as? String ?? "")
        }
        #expect(pfs == [Self.x710, Self.e810, Self.mlx], "spread visits each PF before any gets a second")
        let packed = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:p", "selector": ["placement": "pack", "driver": "ice"]])
        let id = try #require(packed.object["id"] as? String)
        let placement = try #require(packed.object["placement"] as? [String: Any])
        #expect(placement["rule"] as? String == "pack")
        // The reason is stored with the allocation and in the audit.
        #expect(
            (try await client.get("/allocations/\(id)").object["placement"] as? [String: Any])?["rule"] as? String
                == "pack")
        let audit = try #require(try await client.get("/audit?target=\(id)").items.first)
        let after = (audit["details"] as? [String: Any])?["after"] as? [String: Any]
        #expect((after?["placement"] as? [String: Any])?["rule"] as? String == "pack")
        let bad = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:q", "selector": ["placement": "scatter"]])
        #expect(bad.status == 422)
        await daemon.stop()
    }

    @Test func renewExtendsALeaseAndRefusesWhatItCannot() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:l", "pf": Self.x710, "lease_seconds": 60])
        let id = try #require(created.object["id"] as? String)
        let firstExpiry = try #require(created.object["expires_at"] as? String)
        #expect(created.object["lease_seconds"] as? Int == 60)
        let renewed = try await client.request("POST", "/allocations/\(id)/renew", json: ["lease_seconds": 3600])
        #expect(renewed.status == 200)
        #expect(renewed.object["lease_seconds"] as? Int == 3600)
        #expect((renewed.object["expires_at"] as? String ?? "") > firstExpiry)
        #expect(try await client.request("POST", "/allocations/\(id)/renew").status == 200, "no body: same length")
        let events = try await client.get("/audit?target=\(id)&action=allocation.renew").items
        #expect(events.count == 2 && events.allSatisfy { $0["outcome"] as? String == "success" })
        let stream = try EventStreamClient(port: daemon.port, path: "/events?type=allocation.renewed&after=0")
        try stream.readHead()
        let renewal = try #require(try stream.next())
        #expect(renewal.type == "allocation.renewed")
        #expect(renewal.object["owner"] as? String == "vm:l")

        let plain = try await client.request("POST", "/allocations", json: ["owner": "vm:p", "pf": Self.x710])
        let plainID = try #require(plain.object["id"] as? String)
        #expect(plain.object["expires_at"] is NSNull)
        #expect(try await client.request("POST", "/allocations/\(plainID)/renew").status == 422)
        #expect(try await client.request("POST", "/allocations/no-such/renew").status == 404)
        #expect(try await client.request("DELETE", "/allocations/\(plainID)").status == 204)
        #expect(try await client.request("POST", "/allocations/\(plainID)/renew").status == 404)
        for bad in [0, -5, 400 * 24 * 3600] {
            #expect(
                try await client.request(
                    "POST", "/allocations", json: ["owner": "vm:b", "pf": Self.x710, "lease_seconds": bad]
                ).status
                    == 422)
        }

        // A lease that ran out cannot be renewed: its release may be under way.
        let short = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:short", "pf": Self.x710, "lease_seconds": 1])
        let shortID = try #require(short.object["id"] as? String)
        let expiry = try #require(short.object["expires_at"] as? String)
        try await waitUntil("the 1-second lease has run out") { Timestamp.now() > expiry }
        let late = try await client.request("POST", "/allocations/\(shortID)/renew")
        #expect(late.status == 409)
        #expect(late.object["type"] as? String == "urn:sriovd:problem:lease-expired")
        await daemon.stop()
    }

    /// The sweep that runs while serving releases an expired lease through the normal release path: the VF is free
    /// again, the release is audited with actor `lease`, and allocations without a lease stay.
    @Test func theSweepReleasesExpiredLeasesWhileServing() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let leased = try await client.request(
            "POST", "/allocations",
            json: ["owner": "vm:l", "pf": Self.mlx, "lease_seconds": 1, "config": ["vlan": 42]])
        let plain = try await client.request("POST", "/allocations", json: ["owner": "vm:p", "pf": Self.mlx])
        let id = try #require(leased.object["id"] as? String)
        let vf = try #require(leased.object["vf"] as? String)
        let core = daemon.core
        let sweep = Task { await LeaseService(core: core).run(every: .milliseconds(50)) }
        defer { sweep.cancel() }
        try await waitUntil("the lease is released") {
            try await client.get("/allocations/\(id)").object["state"] as? String == "released"
        }
        let release = try #require(try await client.get("/audit?target=\(id)&action=allocation.release").items.first)
        #expect(release["actor"] as? String == "lease")
        #expect(release["outcome"] as? String == "success")
        #expect(try await client.get("/vfs/\(vf)").object["status"] as? String == "free")
        let settings = try await client.get("/vfs/\(vf)").object["settings"] as? [String: Any]
        #expect(settings?["vlan"] as? Int == 0, "the VF was restored")
        #expect(
            try await client.get("/allocations/\(plain.object["id"] as? String ?? "")").object["state"] as? String
                == "active")
        await daemon.stop()
    }

    /// A lease that expires while sriovd is stopped is released by the next start, before it serves, and the
    /// release is an event.
    @Test func aLeaseExpiringAcrossARestart() async throws {
        let first = try await TestDaemon()
        defer { first.removeFiles() }
        let client = try first.client()
        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:restart", "pf": Self.x710, "lease_seconds": 1])
        let id = try #require(created.object["id"] as? String)
        let expiry = try #require(created.object["expires_at"] as? String)
        try await waitUntil("the lease has run out") { Timestamp.now() > expiry }
        // Nothing swept it while this daemon ran (only a start and the serve loop sweep).
        #expect(try await client.get("/allocations/\(id)").object["state"] as? String == "active")
        let lastEvent = try #require(try await client.get("/audit?limit=500").items.last?["id"] as? Int)
        await first.stop()

        let second = try await TestDaemon(directory: first.directory)
        let after = try second.client()
        #expect(try await after.get("/allocations/\(id)").object["state"] as? String == "released")
        let release = try #require(try await after.get("/audit?target=\(id)&action=allocation.release").items.first)
        #expect(release["actor"] as? String == "lease")
        #expect((release["id"] as? Int ?? 0) > lastEvent)
        let stream = try EventStreamClient(port: second.port, path: "/events?after=\(lastEvent)&type=allocation.")
        try stream.readHead()
        let event = try #require(try stream.next())
        #expect(event.type == "allocation.released")
        #expect(event.object["actor"] as? String == "lease")
        await second.stop()
    }

    /// An expired lease whose PF vanished while sriovd was stopped is released at the next start (its holder's claim
    /// is over; nothing is written, the VF being gone), not kept `orphaned` forever; one without a lease stays
    /// orphaned, to be readopted when the PF returns.
    @Test func anExpiredLeaseOfAnOrphanedAllocationIsReleased() async throws {
        let first = try await TestDaemon()
        defer { first.removeFiles() }
        let client = try first.client()
        let leased = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:gone", "pf": Self.x710, "lease_seconds": 1])
        let plain = try await client.request("POST", "/allocations", json: ["owner": "vm:stays", "pf": Self.x710])
        let id = try #require(leased.object["id"] as? String)
        let plainID = try #require(plain.object["id"] as? String)
        let expiry = try #require(leased.object["expires_at"] as? String)
        await first.stop()
        try await waitUntil("the lease has run out") { Timestamp.now() > expiry }
        let link = first.directory.appendingPathComponent("bus/pci/devices/\(Self.x710)")
        try FileManager.default.removeItem(at: link)

        let second = try await TestDaemon(directory: first.directory)
        let after = try second.client()
        #expect(try await after.get("/allocations/\(id)").object["state"] as? String == "released")
        #expect(try await after.get("/allocations/\(plainID)").object["state"] as? String == "orphaned")
        let release = try #require(try await after.get("/audit?target=\(id)&action=allocation.release").items.first)
        #expect(release["actor"] as? String == "lease")
        #expect(release["outcome"] as? String == "success")
        await second.stop()
    }
}
