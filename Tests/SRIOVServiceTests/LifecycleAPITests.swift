import Foundation
import HostSimulator
import SRIOVCore
import SRIOVHardware
import Testing

/// VF counts, allocations, idempotency and the audit trail, over real sockets against a real SQLite file
/// and the simulated kernel.
@Suite(.serialized) struct LifecycleAPITests {
    /// The address of the simulated PF with this device id.
    static func pf(_ client: TestClient, device: String) async throws -> String {
        let pfs = try await client.get("/pfs")
        return try #require(pfs.items.first { $0["device_id"] as? String == device }?["address"] as? String)
    }

    /// A daemon whose E810 has `count` VFs, a client, and the E810's address.
    static func daemonWithE810VFs(_ count: Int) async throws -> (TestDaemon, TestClient, String) {
        let daemon = try await TestDaemon()
        let client = try daemon.client()
        let e810 = try await pf(client, device: "159b")
        #expect(try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": count]).status == 201)
        return (daemon, client, e810)
    }

    @Test func createsResizesAndRemovesVFs() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let e810 = try await Self.pf(client, device: "159b")

        let created = try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 8])
        #expect(created.status == 201)
        #expect((created.object["vfs"] as? [Any])?.count == 8)
        #expect(created.object["num_vfs"] as? Int == 8)
        let change = created.object["change"] as? [String: Any]
        #expect(change?["enabled"] as? Int == 8)
        #expect(change?["previous"] as? Int == 0)

        let same = try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 8])
        #expect(same.status == 200)

        let resized = try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 3])
        #expect(resized.status == 201)
        #expect(try await client.get("/pfs/\(e810)/vfs").items.count == 3)

        let tooMany = try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 100_000])
        #expect(tooMany.status == 422)
        let overTotal = try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 129])
        #expect(overTotal.status == 422)
        #expect(overTotal.object["total_vfs"] as? Int == 128)

        for bad in ["{\"count\": -1}", "{\"count\": \"3\"}", "{\"count\": 1.5}", "{\"cont\": 3}", "{}", "[]"] {
            let response = try await client.request("POST", "/pfs/\(e810)/vfs", body: bad)
            #expect(response.status == 422 || response.status == 400, "\(bad)")
            #expect(response.header("Content-Type") == "application/problem+json")
        }
        let notJSON = try await client.request("POST", "/pfs/\(e810)/vfs", body: "{count: 3")
        #expect(notJSON.status == 400)
        #expect(try await client.get("/pfs/\(e810)/vfs").items.count == 3, "bad input changed nothing")

        let removed = try await client.request("DELETE", "/pfs/\(e810)/vfs")
        #expect(removed.status == 204)
        #expect(try await client.get("/pfs/\(e810)").object["num_vfs"] as? Int == 0)
        await daemon.stop()
    }

    @Test func allocatesLowestFreeVFAndReleases() async throws {
        let (daemon, client, e810) = try await Self.daemonWithE810VFs(2)
        defer { daemon.removeFiles() }

        let first = try await client.request(
            "POST", "/allocations",
            json: ["owner": "k8s:default/web-0/1", "pf": e810, "labels": ["team": "a"], "config": ["vlan": 10]])
        #expect(first.status == 201)
        #expect(first.object["vf_index"] as? Int == 0)
        #expect(first.object["state"] as? String == "active")
        #expect(first.object["generation"] as? Int == 1)
        let id = try #require(first.object["id"] as? String)
        #expect(first.header("Location") == "/allocations/\(id)")

        let second = try await client.request("POST", "/allocations", json: ["owner": "vm:db", "pf": e810])
        #expect(second.object["vf_index"] as? Int == 1)
        let exhausted = try await client.request("POST", "/allocations", json: ["owner": "vm:late", "pf": e810])
        #expect(exhausted.status == 409)
        #expect(exhausted.object["free_vfs"] as? Int == 0)

        let held = try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 4])
        #expect(held.status == 409)
        #expect((held.object["allocated_vfs"] as? [String])?.count == 2)
        let stillTwo = try await client.get("/pfs/\(e810)")
        #expect(stillTwo.object["num_vfs"] as? Int == 2)

        let vfAddress = try #require(first.object["vf"] as? String)
        #expect(try await client.get("/vfs/\(vfAddress)").object["status"] as? String == "allocated")

        #expect(try await client.request("DELETE", "/allocations/\(id)").status == 204)
        #expect(
            try await client.request("DELETE", "/allocations/\(id)").status == 404, "a second release changes nothing")
        let released = try await client.get("/allocations/\(id)")
        #expect(released.object["state"] as? String == "released")
        #expect(released.object["released_at"] is String)

        let again = try await client.request("POST", "/allocations", json: ["owner": "vm:next", "vf": vfAddress])
        #expect(again.status == 201)
        #expect(again.object["generation"] as? Int == 2, "the fencing token grows per VF")

        let active = try await client.get("/allocations?state=active")
        #expect(active.items.count == 2)
        let all = try await client.get("/allocations?state=all&limit=2")
        #expect(all.items.count == 2)
        let next = try #require(all.object["next"] as? String)
        let page2 = try await client.get("/allocations?state=all&limit=2&cursor=\(next)")
        #expect(page2.items.count == 1)
        #expect(try await client.get("/allocations?owner=vm:db").items.count == 1)
        await daemon.stop()
    }

    @Test func releaseOfAVFRemovedBehindSriovdsBackSucceeds() async throws {
        let (daemon, client, e810) = try await Self.daemonWithE810VFs(2)
        defer { daemon.removeFiles() }
        let held = try await client.request("POST", "/allocations", json: ["owner": "vm:gone", "pf": e810])
        let id = try #require(held.object["id"] as? String)
        // An operator removes the VFs by hand; the daemon has no uevents here, so its inventory still lists them.
        try SRIOVWriter(sysfs: HardwareHost.simulated(at: daemon.directory).sysfs).setNumVFs(
            try #require(PCIAddress(e810)), 0)

        let released = try await client.request("DELETE", "/allocations/\(id)")
        #expect(released.status == 204, "\(released.text)")
        #expect(try await client.get("/allocations/\(id)").object["state"] as? String == "released")
        let audit = try await client.get("/audit?action=allocation.release&target=\(id)")
        let details = audit.items.first?["details"] as? [String: Any]
        #expect(details?["restore"] as? String == "vf absent: nothing to restore")
        await daemon.stop()
    }

    @Test func rejectsBadAllocationBodiesNamingTheField() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let x710 = try await Self.pf(client, device: "1572")
        let cases: [(String, Int, String?)] = [
            ("{\"pf\": \"\(x710)\"}", 422, "owner"),
            ("{\"owner\": \"\", \"pf\": \"\(x710)\"}", 422, "owner"),
            ("{\"owner\": \"a\"}", 422, "pf"),
            ("{\"owner\": \"a\", \"pf\": \"nope\"}", 422, "pf"),
            ("{\"owner\": \"a\", \"pf\": \"\(x710)\", \"vf\": \"\(x710)\"}", 422, "selector"),
            ("{\"owner\": \"a\", \"pf\": \"\(x710)\", \"config\": {\"vlan\": 5000}}", 422, "config.vlan"),
            ("{\"owner\": \"a\", \"pf\": \"\(x710)\", \"config\": {\"mac\": \"zz\"}}", 422, "config.mac"),
            ("{\"owner\": \"a\", \"pf\": \"\(x710)\", \"labels\": {\"k\": 1}}", 422, nil),
            ("{\"owner\": 7, \"pf\": \"\(x710)\"}", 422, "owner"),
            ("not json", 400, nil),
        ]
        for (body, status, field) in cases {
            let response = try await client.request("POST", "/allocations", body: body)
            #expect(response.status == status, "\(body)")
            if let field { #expect(response.object["field"] as? String == field, "\(body)") }
        }
        let unknownPF = try await client.request("POST", "/allocations", json: ["owner": "a", "pf": "0000:ee:00.0"])
        #expect(unknownPF.status == 404)
        #expect(try await client.get("/allocations?state=all").items.isEmpty, "nothing was allocated")
        await daemon.stop()
    }

    @Test func idempotencyKeyReplaysAndRefusesADifferentBody() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let x710 = try await Self.pf(client, device: "1572")
        let body = ["owner": "vm:web", "pf": x710]
        let first = try await client.request("POST", "/allocations", json: body, headers: ["Idempotency-Key": "k-1"])
        let replay = try await client.request("POST", "/allocations", json: body, headers: ["Idempotency-Key": "k-1"])
        #expect(first.status == 201)
        #expect(replay.status == 201)
        #expect(replay.body == first.body)
        #expect(replay.header("Location") == first.header("Location"))
        #expect(replay.header("Idempotent-Replayed") == "true")
        let other = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:other", "pf": x710], headers: ["Idempotency-Key": "k-1"])
        #expect(other.status == 422)
        #expect(try await client.get("/allocations").items.count == 1, "the retry did not allocate twice")
        await daemon.stop()

        // The key survives a restart.
        let restarted = try await TestDaemon(directory: daemon.directory)
        let afterRestart = try await restarted.client().request(
            "POST", "/allocations", json: body, headers: ["Idempotency-Key": "k-1"])
        #expect(afterRestart.body == first.body)
        #expect(try await restarted.client().get("/allocations").items.count == 1)
        await restarted.stop()
    }

    @Test func parallelAllocationsNeverShareAVF() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let setup = try daemon.client()
        let e810 = try await Self.pf(setup, device: "159b")
        _ = try await setup.request("POST", "/pfs/\(e810)/vfs", json: ["count": 10])
        let port = daemon.port

        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for n in 0..<120 {
                group.addTask {
                    let client = try TestClient(port: port)
                    let response = try await client.request(
                        "POST", "/allocations", json: ["owner": "race:\(n)", "pf": e810])
                    return (response.status, response.object["vf"] as? String)
                }
            }
            var results: [(Int, String?)] = []
            for try await result in group { results.append(result) }
            return results
        }
        let created = statuses.filter { $0.0 == 201 }
        #expect(created.count == 10)
        #expect(statuses.filter { $0.0 == 409 }.count == 110)
        #expect(Set(created.compactMap(\.1)).count == 10, "no VF handed out twice")
        #expect(try await setup.get("/allocations?limit=500").items.count == 10)
        await daemon.stop()
    }

    @Test func auditsAWholeWorkflowIncludingFailures() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let e810 = try await Self.pf(client, device: "159b")
        #expect(try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 4]).status == 201)
        let allocation = try await client.request("POST", "/allocations", json: ["owner": "vm:a", "pf": e810])
        let id = try #require(allocation.object["id"] as? String)
        #expect(try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 2]).status == 409)
        #expect(try await client.request("DELETE", "/allocations/\(id)").status == 204)
        #expect(try await client.request("POST", "/pfs/\(e810)/vfs", json: ["count": 2]).status == 201)

        let all = try await client.get("/audit?limit=500").items
        #expect(all.first?["action"] as? String == "reconcile.run", "startup reconciliation is audited")
        let events = all.filter { $0["actor"] as? String != "reconciler" }
        let summary = events.map { "\($0["action"]!) \($0["outcome"]!)" }
        #expect(
            summary.filter { !$0.hasPrefix("hw.") } == [
                "pf.vfs.set success", "allocation.create success", "pf.vfs.set failure",
                "allocation.release success", "pf.vfs.set success",
            ])
        let writes = events.filter { $0["action"] as? String == "hw.sysfs.write" }
        #expect(writes.count == 3, "4 from 0, then 0 and 2")
        #expect(writes.allSatisfy { ($0["details"] as? [String: Any])?["duration_ms"] is NSNumber })
        #expect(events.allSatisfy { $0["request_id"] is String && $0["actor"] as? String != nil })
        let ids = events.compactMap { $0["id"] as? Int }
        #expect(ids == ids.sorted())
        let releases = try await client.get("/audit?action=allocation.release&target=\(id)").items
        #expect(releases.count == 1)
        let details = releases.first?["details"] as? [String: Any]
        #expect((details?["before"] as? [String: Any])?["state"] as? String == "active")
        #expect((details?["after"] as? [String: Any])?["state"] as? String == "released")
        let paged = try await client.get("/audit?limit=2")
        let after = try #require(paged.object["next"] as? String)
        let rest = try await client.get("/audit?limit=500&after=\(after)").items
        #expect(rest.count == all.count - 2)
        #expect(try await client.get("/audit?since=yesterday").status == 400)
        #expect(try await client.get("/audit?since=2000-01-01T00:00:00Z").items.count == min(all.count, 100))
        #expect(try await client.get("/audit?until=2000-01-01T00:00:00Z").items.isEmpty)
        await daemon.stop()
    }
}
