import Foundation
import HostSimulator
import SRIOVStore
import Testing

/// `Prefer: respond-async`: slow requests answered 202 and followed at `/operations/{id}`, on a simulated host
/// whose i40e creates VFs slowly.
@Suite(.serialized) struct OperationTests {
    static let x710 = "0000:3b:00.0"
    static let async = ["Prefer": "respond-async"]

    private func slowDaemon(perVF milliseconds: Int = 40) async throws -> TestDaemon {
        let daemon = try await TestDaemon()
        try SimulatedHost.setVFCreationDelays(["i40e": milliseconds], at: daemon.directory)
        return daemon
    }

    @Test func aResizeAnswers202AndIsFollowedToItsEnd() async throws {
        let daemon = try await slowDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let accepted = try await client.request(
            "POST", "/pfs/\(Self.x710)/vfs", json: ["count": 8], headers: Self.async)
        #expect(accepted.status == 202 && accepted.reason == "Accepted")
        #expect(accepted.header("Preference-Applied") == "respond-async")
        let location = try #require(accepted.header("Location"))
        #expect(location == "/operations/\(accepted.object["id"] as? String ?? "-")")
        #expect(["queued", "running"].contains(accepted.object["state"] as? String ?? ""))

        let done = try await client.get(location + "?wait=30")
        #expect(done.object["state"] as? String == "succeeded", "\(done.object)")
        let result = try #require(done.object["result"] as? [String: Any])
        #expect((result["change"] as? [String: Any])?["enabled"] as? Int == 8)
        #expect(done.object["finished_at"] is String)
        #expect(try await client.get("/pfs/\(Self.x710)").object["num_vfs"] as? Int == 8)

        let id = try #require(accepted.object["id"] as? String)
        let states = try await client.get("/audit?target=\(id)").items.compactMap { $0["action"] as? String }
        #expect(states == ["operation.queued", "operation.running", "operation.succeeded"])
        let listed = try await client.get("/operations?state=succeeded").items
        #expect(listed.contains { $0["id"] as? String == id })
        await daemon.stop()
    }

    @Test func aRefusedRequestEndsFailedWithItsProblem() async throws {
        let daemon = try await slowDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let accepted = try await client.request(
            "POST", "/pfs/\(Self.x710)/vfs", json: ["count": 500], headers: Self.async)
        #expect(accepted.status == 202)
        let location = try #require(accepted.header("Location"))
        let done = try await client.get(location + "?wait=30")
        #expect(done.object["state"] as? String == "failed")
        let problem = try #require(done.object["problem"] as? [String: Any])
        #expect(problem["type"] as? String == "urn:sriovd:problem:count-out-of-range")
        #expect(problem["status"] as? Int == 422)
        await daemon.stop()
    }

    @Test func withoutThePreferenceTheCallStaysSynchronous() async throws {
        let daemon = try await slowDaemon(perVF: 1)
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let created = try await client.request("POST", "/pfs/\(Self.x710)/vfs", json: ["count": 6])
        #expect(created.status == 201)
        #expect(try await client.get("/operations").items.isEmpty)
        // An allocation that binds no driver ignores the preference (RFC 7240 lets a server do so).
        let plain = try await client.request(
            "POST", "/allocations", json: ["owner": "a", "pf": Self.x710], headers: Self.async)
        #expect(plain.status == 201)
        let binding = try await client.request(
            "POST", "/allocations", json: ["owner": "b", "pf": Self.x710, "config": ["driver": "vfio-pci"]],
            headers: Self.async)
        #expect(binding.status == 202)
        let done = try await client.get((binding.header("Location") ?? "/operations/-") + "?wait=30")
        #expect(done.object["state"] as? String == "succeeded")
        let allocation = try #require(done.object["result"] as? [String: Any])
        #expect(done.object["target"] as? String == allocation["id"] as? String)
        #expect((allocation["device"] as? [String: Any])?["driver"] as? String == "vfio-pci")
        await daemon.stop()
    }

    @Test func anIdempotencyKeyReplaysTheSameOperation() async throws {
        let daemon = try await slowDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        var headers = Self.async
        headers["Idempotency-Key"] = "resize-1"
        let first = try await client.request("POST", "/pfs/\(Self.x710)/vfs", json: ["count": 8], headers: headers)
        let again = try await client.request("POST", "/pfs/\(Self.x710)/vfs", json: ["count": 8], headers: headers)
        #expect(first.status == 202 && again.status == 202)
        #expect(again.header("Location") == first.header("Location"))
        #expect(again.header("Idempotent-Replayed") == "true")
        let other = try await client.request("POST", "/pfs/\(Self.x710)/vfs", json: ["count": 2], headers: headers)
        #expect(other.status == 422)
        _ = try await client.get((first.header("Location") ?? "") + "?wait=30")
        #expect(try await client.get("/operations").items.count == 1)
        await daemon.stop()
    }

    @Test func waitIsBoundedAndUnknownIDsAre404() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        #expect(try await client.get("/operations/nope").status == 404)
        let tooLong = try await client.get("/operations/nope?wait=61")
        #expect(tooLong.status == 400 && tooLong.object["parameter"] as? String == "wait")
        await daemon.stop()
    }

    /// An operation that a restart cut off, whose work the hardware does not show done, ends `failed` with an
    /// `interrupted` problem at the next start.
    @Test func anOperationCutOffByARestartEndsInterrupted() async throws {
        let first = try await TestDaemon()
        defer { first.removeFiles() }
        let running = OperationRecord(
            id: "cut-off", kind: "reconcile.run", target: "host", state: .running, request: "{}", actor: "test",
            requestID: nil, createdAt: "2026-12-06T10:00:00.000Z", startedAt: "2026-12-06T10:00:00.001Z")
        try await first.store.write { try $0.insertOperation(running) }
        await first.stop()

        let restarted = try await TestDaemon(directory: first.directory)
        let settled = try await restarted.client().get("/operations/cut-off").object
        #expect(settled.object["state"] as? String == "failed")
        let problem = settled["problem"] as? [String: Any]
        #expect(problem?["type"] as? String == "urn:sriovd:problem:interrupted")
        await restarted.stop()
    }
}

/// kill -9 in the middle of an asynchronous resize, on the real binary: after the restart the operation ends
/// truthfully (the simulated kernel, like the real one, finishes a VF count change it started).
@Suite(.serialized) struct OperationCrashTests {
    @Test func killedDuringAnAsyncResizeEndsAsTheHardwareShows() async throws {
        let daemon = try await DaemonProcess.start(["serve", "--listen", "127.0.0.1:0", "--simulate-slow-drivers"])
        let client = try TestClient(port: try #require(daemon.port))
        let accepted = try await client.request(
            "POST", "/pfs/0000:3b:00.0/vfs", json: ["count": 8], headers: ["Prefer": "respond-async"])
        #expect(accepted.status == 202)
        let id = try #require(accepted.object["id"] as? String)
        // The kernel is creating the VFs (about 2.8 s for 8 on an i40e) once the simulation has journaled it.
        let journal = daemon.directory + "/.simulator/numvfs-in-progress"
        try await waitUntil(timeout: .seconds(20), "the creation of 8 VFs is under way") {
            (try? String(contentsOfFile: journal, encoding: .utf8)) == "0000:3b:00.0 8\n"
        }
        daemon.signal(SIGKILL)
        _ = try await daemon.waitForExit()

        let restarted = try await DaemonProcess.start(
            ["serve", "--listen", "127.0.0.1:0"], directory: daemon.directory)
        let after = try TestClient(port: try #require(restarted.port))
        let operation = try await after.get("/operations/\(id)").object
        let pf = try await after.get("/pfs/0000:3b:00.0").object
        #expect(pf["num_vfs"] as? Int == 8, "the kernel finished the change")
        #expect(operation["state"] as? String == "succeeded", "\(operation)")
        #expect((operation["result"] as? [String: Any])?["num_vfs"] as? Int == 8)
        #expect(try await after.get("/audit?target=\(id)").items.last?["action"] as? String == "operation.succeeded")
        _ = try await restarted.stop()
        try? FileManager.default.removeItem(atPath: daemon.directory)
    }
}

extension Dictionary where Key == String, Value == Any {
    fileprivate var object: [String: Any] { self }
}
