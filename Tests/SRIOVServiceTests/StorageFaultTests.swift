import Foundation
import HostSimulator
import Netlink
import SRIOVHardware
import SRIOVStore
import Testing

/// Faults of the database while a VF's settings change: the lock held by another process, a file that refuses
/// writes, the audit of the hardware writes refused, and the undo refused by the driver too. Each test reads back
/// the answer, the hardware, the audit and the VF's next hand-out: nothing is left at settings the database does
/// not promise, and no VF is handed out away from its baseline.
@Suite(.serialized) struct StorageFaultTests {
    static let vf = "0000:5e:01.0"

    final class Fixture {
        let daemon: TestDaemon
        let client: TestClient
        let faults: FaultInjector

        init() async throws {
            let faults = FaultInjector()
            self.faults = faults
            daemon = try await TestDaemon(
                storeOptions: Store.Options(busyTimeout: .milliseconds(100)), hardware: { faults.host(at: $0) })
            client = try daemon.client()
            // Eight VFs on the E810, so its VF 0 is free and at factory settings.
            let created = try await client.request("POST", "/pfs/0000:5e:00.0/vfs", json: ["count": 8])
            #expect(created.status == 201)
        }

        func lockDatabase() throws -> DatabaseLock { try DatabaseLock(path: daemon.store.path) }

        func settings(_ vf: String = StorageFaultTests.vf) async throws -> [String: Any] {
            try #require(try await client.get("/vfs/\(vf)").object["settings"] as? [String: Any])
        }

        func audit(_ query: String) async throws -> [[String: Any]] {
            try await client.get("/audit?\(query)&limit=500").items
        }

        func openIntents() throws -> Int { try daemon.store.read { try $0.openIntents().count } }

        /// The VF handed out next, by address: 201, and its settings are the factory baseline.
        func expectHandedOutAtBaseline() async throws {
            let created = try await client.request("POST", "/allocations", json: ["owner": "next", "vf": Self.vf])
            #expect(created.status == 201, "the VF goes back to the pool")
            let now = try await settings()
            #expect(now["vlan"] as? Int == 0 && now["trust"] as? Bool == false, "handed out at its baseline: \(now)")
            let id = try #require(created.object["id"] as? String)
            #expect(try await client.request("DELETE", "/allocations/\(id)").status == 204)
        }

        func stop() async {
            await daemon.stop()
            daemon.removeFiles()
        }

        static var vf: String { StorageFaultTests.vf }
    }

    static var patch: [String: Any] { ["vlan": 55, "trust": true] }

    private func expectStorageError(_ response: TestClient.Response, hardware: String) {
        #expect(response.status == 500)
        #expect(response.object["type"] as? String == "urn:sriovd:problem:storage-error")
        #expect(response.object["hardware"] as? String == hardware, "\(response.object)")
    }

    /// The lock is held before the request: the intent cannot be committed, so nothing is written.
    @Test func lockHeldBeforeTheChangeTouchesNothing() async throws {
        let fixture = try await Fixture()
        let lock = try fixture.lockDatabase()
        let writesBefore = fixture.faults.writes
        let answer = try await fixture.client.request("PATCH", "/vfs/\(Self.vf)", json: Self.patch)
        lock.release()
        expectStorageError(answer, hardware: "untouched")
        #expect(fixture.faults.writes == writesBefore, "no rtnetlink write was sent")
        let now = try await fixture.settings()
        #expect(now["vlan"] as? Int == 0 && now["trust"] as? Bool == false)
        #expect(try await fixture.audit("action=hw.netlink.write&target=\(Self.vf)").isEmpty)
        #expect(try fixture.openIntents() == 0)
        try await fixture.expectHandedOutAtBaseline()
        await fixture.stop()
    }

    /// A file that refuses writes (immutable WAL): the same, nothing written.
    @Test func aFileThatRefusesWritesTouchesNothing() async throws {
        let fixture = try await Fixture()
        let wal = fixture.daemon.store.path + "-wal"
        try Self.chattr("+i", wal)
        defer { try? Self.chattr("-i", wal) }
        let answer = try await fixture.client.request("PATCH", "/vfs/\(Self.vf)", json: Self.patch)
        try Self.chattr("-i", wal)
        expectStorageError(answer, hardware: "untouched")
        let now = try await fixture.settings()
        #expect(now["vlan"] as? Int == 0 && now["trust"] as? Bool == false)
        try await fixture.expectHandedOutAtBaseline()
        await fixture.stop()
    }

    /// The database refuses the audit of the writes (the lock is taken at the first write): the writes are undone
    /// before the answer; the lock is gone by the undo's first write, so the writes, the undo and the refusal are
    /// all on record and the intent is closed.
    @Test func auditRefusedUndoesTheWritesAndRecordsThem() async throws {
        let fixture = try await Fixture()
        let holder = LockHolder(path: fixture.daemon.store.path)
        fixture.faults.at(write: 1) { holder.take() }
        fixture.faults.at(write: 3) { holder.release() }
        let answer = try await fixture.client.request("PATCH", "/vfs/\(Self.vf)", json: Self.patch)
        holder.release()
        expectStorageError(answer, hardware: "restored")
        let now = try await fixture.settings()
        #expect(now["vlan"] as? Int == 0 && now["trust"] as? Bool == false, "the writes were undone: \(now)")
        let writes = try await fixture.audit("action=hw.netlink.write&target=\(Self.vf)")
        let values = writes.compactMap { ($0["details"] as? [String: Any])?["value"] as? String }
        #expect(values.contains("vlan=55 qos=0 proto=802.1Q") && values.contains("on"), "the change: \(values)")
        #expect(values.contains("vlan=0 qos=0 proto=802.1Q") && values.contains("off"), "the undo: \(values)")
        let refusal = try await fixture.audit("action=vf.update&target=\(Self.vf)")
        #expect(refusal.contains { ($0["error"] as? String)?.hasPrefix("storage-error") == true })
        #expect(try fixture.openIntents() == 0)
        try await fixture.expectHandedOutAtBaseline()
        await fixture.stop()
    }

    /// The lock stays held until after the answer: the writes are undone, the intent stays open, and a reconcile
    /// once the fault clears recovers it and puts it on record.
    @Test func auditRefusedThroughoutLeavesTheIntentForReconcile() async throws {
        let fixture = try await Fixture()
        let holder = LockHolder(path: fixture.daemon.store.path)
        fixture.faults.at(write: 1) { holder.take() }
        let answer = try await fixture.client.request("PATCH", "/vfs/\(Self.vf)", json: Self.patch)
        holder.release()
        expectStorageError(answer, hardware: "restored")
        #expect(try fixture.openIntents() == 1)
        let now = try await fixture.settings()
        #expect(now["vlan"] as? Int == 0 && now["trust"] as? Bool == false)
        let report = try await fixture.client.request("POST", "/reconcile")
        #expect(report.status == 200)
        let actions = report.object["actions"] as? [[String: Any]] ?? []
        #expect(actions.contains { $0["kind"] as? String == "intent.recover" && $0["target"] as? String == Self.vf })
        #expect(try fixture.openIntents() == 0)
        #expect(try await fixture.audit("action=intent.recover&target=\(Self.vf)").count == 1)
        try await fixture.expectHandedOutAtBaseline()
        await fixture.stop()
    }

    /// The audit is refused and the driver refuses the undo too: the answer says the hardware is changed, the VF is
    /// kept out of the pool, and a reconcile after the faults clear puts it back and returns it.
    @Test func undoRefusedKeepsTheVFOutOfThePoolUntilReconciled() async throws {
        let fixture = try await Fixture()
        let holder = LockHolder(path: fixture.daemon.store.path)
        fixture.faults.at(write: 1) { holder.take() }
        fixture.faults.refuse(from: 3)
        let answer = try await fixture.client.request("PATCH", "/vfs/\(Self.vf)", json: Self.patch)
        holder.release()
        fixture.faults.stopRefusing()
        expectStorageError(answer, hardware: "changed")
        let now = try await fixture.settings()
        #expect(now["vlan"] as? Int == 55, "the undo was refused: the VF still carries the change")
        let refused = try await fixture.client.request("POST", "/allocations", json: ["owner": "x", "vf": Self.vf])
        #expect(refused.status == 409, "a VF away from its baseline is not handed out")
        #expect(try await fixture.client.request("POST", "/reconcile").status == 200)
        let repaired = try await fixture.settings()
        #expect(repaired["vlan"] as? Int == 0 && repaired["trust"] as? Bool == false, "\(repaired)")
        try await fixture.expectHandedOutAtBaseline()
        await fixture.stop()
    }

    /// `PATCH /allocations/{id}` under the same fault: the held VF goes back to the allocation's settings, the
    /// record keeps them, and the release restores the baseline.
    @Test func allocationPatchRefusedKeepsTheRecordAndTheHardwareTogether() async throws {
        let fixture = try await Fixture()
        let created = try await fixture.client.request(
            "POST", "/allocations", json: ["owner": "held", "vf": Self.vf, "config": ["vlan": 100]])
        #expect(created.status == 201)
        let id = try #require(created.object["id"] as? String)
        let holder = LockHolder(path: fixture.daemon.store.path)
        fixture.faults.at(write: 1) { holder.take() }
        fixture.faults.at(write: 3) { holder.release() }
        let answer = try await fixture.client.request(
            "PATCH", "/allocations/\(id)", json: ["vlan": 200, "trust": true])
        holder.release()
        expectStorageError(answer, hardware: "restored")
        let now = try await fixture.settings()
        #expect(now["vlan"] as? Int == 100 && now["trust"] as? Bool == false, "\(now)")
        let record = try await fixture.client.get("/allocations/\(id)").object
        #expect((record["config"] as? [String: Any])?["vlan"] as? Int == 100)
        #expect((record["config"] as? [String: Any])?["trust"] == nil)
        #expect(try await fixture.client.request("DELETE", "/allocations/\(id)").status == 204)
        try await fixture.expectHandedOutAtBaseline()
        await fixture.stop()
    }

    static func chattr(_ flag: String, _ path: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        process.arguments = [flag, path]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ChattrFailed(flag: flag, path: path) }
    }

    struct ChattrFailed: Error {
        var flag: String
        var path: String
    }
}

/// Takes the database's write lock from inside a hardware hook and lets it go later.
final class LockHolder: @unchecked Sendable {
    private let path: String
    private let lock = NSLock()
    private var held: DatabaseLock?

    init(path: String) { self.path = path }

    func take() {
        lock.lock()
        defer { lock.unlock() }
        held = try? DatabaseLock(path: path)
    }

    func release() {
        lock.lock()
        defer { lock.unlock() }
        held?.release()
        held = nil
    }
}
