import Foundation
import HostSimulator
import SRIOVStore
import Testing

/// What a retry under an Idempotency-Key is answered: the first answer with its own status line, and a problem
/// of its own while the first request is unfinished or after a restart cut it off.
@Suite(.serialized) struct IdempotencyAnswerTests {
    static let igb = "0000:02:00.0"

    /// igb refuses any minimum rate: the first answer is a 422, and its replay is the same 422 with its own reason
    /// phrase (not "Created").
    @Test func aReplayedRefusalKeepsItsStatusLine() async throws {
        let daemon = try await TestDaemon(profiles: SimulatedHost.defaultProfiles + [SimulatedHost.igb82576Profile])
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let body: [String: Any] = ["owner": "vm:a", "pf": Self.igb, "config": ["min_tx_rate": 10]]
        let first = try await client.request("POST", "/allocations", json: body, headers: ["Idempotency-Key": "r-1"])
        #expect(first.status == 422 && first.reason == "Unprocessable Content")
        let replay = try await client.request("POST", "/allocations", json: body, headers: ["Idempotency-Key": "r-1"])
        #expect(replay.status == 422 && replay.reason == "Unprocessable Content")
        #expect(replay.header("Idempotent-Replayed") == "true")
        #expect(replay.body == first.body)

        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:b", "pf": Self.igb], headers: ["Idempotency-Key": "r-2"])
        let again = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:b", "pf": Self.igb], headers: ["Idempotency-Key": "r-2"])
        #expect(created.status == 201 && again.status == 201 && again.reason == "Created")
        await daemon.stop()
    }

    /// The database refuses to record the first request's outcome (its lock held from the first write until after
    /// the answer): a retry meanwhile is told the first is unfinished; once a reconcile has rolled it back, a retry
    /// is told it was interrupted and to use a new key. No sentinel PCI address in either.
    @Test func anUnfinishedThenInterruptedFirstRequestHasItsOwnProblems() async throws {
        let faults = FaultInjector()
        let daemon = try await TestDaemon(
            storeOptions: Store.Options(busyTimeout: .milliseconds(100)), hardware: { faults.host(at: $0) })
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        #expect(try await client.request("POST", "/pfs/0000:5e:00.0/vfs", json: ["count": 4]).status == 201)
        let body: [String: Any] = ["owner": "vm:c", "pf": "0000:5e:00.0", "config": ["vlan": 300]]
        let holder = LockHolder(path: daemon.store.path)
        faults.at(write: 1) { holder.take() }
        let first = try await client.request("POST", "/allocations", json: body, headers: ["Idempotency-Key": "i-1"])
        holder.release()
        #expect(first.status == 500 && first.object["hardware"] as? String == "restored")

        let meanwhile = try await client.request(
            "POST", "/allocations", json: body, headers: ["Idempotency-Key": "i-1"])
        #expect(meanwhile.status == 409 && meanwhile.reason == "Conflict")
        #expect(meanwhile.object["type"] as? String == "urn:sriovd:problem:idempotent-request-in-progress")

        #expect(try await client.request("POST", "/reconcile").status == 200)
        let after = try await client.request("POST", "/allocations", json: body, headers: ["Idempotency-Key": "i-1"])
        #expect(after.status == 409)
        #expect(after.object["type"] as? String == "urn:sriovd:problem:idempotent-request-interrupted")
        #expect(!after.text.contains("0000:00:00.0"))
        #expect(try await client.get("/allocations").items.isEmpty, "the interrupted allocation was released")
        let vf = try await client.get("/vfs/0000:5e:01.0").object["settings"] as? [String: Any]
        #expect(vf?["vlan"] as? Int == 0, "its VF is back at its baseline")
        await daemon.stop()
    }
}
