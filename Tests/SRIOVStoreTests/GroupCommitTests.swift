import Foundation
import SRIOVCore
import Testing

@testable import SRIOVStore

@Suite struct GroupCommitTests {
    let directory = TemporaryDirectory()

    @Test func twoHundredConcurrentWritesAllCommitInFewerTransactions() async throws {
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        let outcomes = try await withThrowingTaskGroup(of: (Int, Result<Int64, BodyFailure>).self) { group in
            for number in 0..<200 {
                group.addTask {
                    do {
                        let id = try await store.write { tx in
                            let id = try tx.appendAudit(Fixtures.event(target: "w\(number)"))
                            if number % 10 == 7 { throw BodyFailure(number: number) }
                            return id
                        }
                        return (number, .success(id))
                    } catch let failure as BodyFailure {
                        return (number, .failure(failure))
                    }
                }
            }
            var outcomes: [Int: Result<Int64, BodyFailure>] = [:]
            for try await (number, outcome) in group { outcomes[number] = outcome }
            return outcomes
        }
        #expect(outcomes.count == 200)
        for (number, outcome) in outcomes {
            if number % 10 == 7 {
                #expect(outcome == .failure(BodyFailure(number: number)))
            } else {
                #expect((try? outcome.get()) != nil)
            }
        }
        let batches = store.writer.batchCount
        #expect(batches < 200, "200 concurrent writes took \(batches) transactions")
        store.close()

        // After close and reopen: exactly the bodies that succeeded, each once.
        let reopened = try Store(path: path)
        defer { reopened.close() }
        let events = try reopened.read { try $0.auditEvents(AuditFilter(limit: 500)) }
        let targets = Set(events.map(\.target))
        #expect(events.count == 180)
        #expect(targets == Set((0..<200).filter { $0 % 10 != 7 }.map { "w\($0)" }))
        let successIDs = Set(outcomes.values.compactMap { try? $0.get() })
        #expect(Set(events.map(\.id)) == successIDs)
    }

    /// Holds the writer in one body until three more are queued, so they are certain to share one transaction.
    @Test func aFailingBodyRollsBackOnlyItselfWithinOneBatch() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        let release = DispatchSemaphore(value: 0)
        async let blocker: Void = store.write { _ in release.wait() }
        // Should a wait below time out, the held writer is let go, so the test fails instead of hanging.
        defer { release.signal() }
        try await waitUntil("the writer runs the blocking body") { store.writer.batchCount >= 1 }
        let before = store.writer.batchCount

        async let first = store.write { tx in try tx.appendAudit(Fixtures.event(target: "first")) }
        let failing = Task {
            try await store.write { tx -> Int64 in
                _ = try tx.appendAudit(Fixtures.event(target: "failing"))
                _ = try tx.nextGeneration(vf: Fixtures.vf(9))
                throw BodyFailure(number: 2)
            }
        }
        async let last = store.write { tx in try tx.appendAudit(Fixtures.event(target: "last")) }
        try await waitUntil("three writes are queued") { store.writer.pendingCount >= 3 }
        release.signal()
        try await blocker

        let firstID = try await first
        let lastID = try await last
        await #expect(throws: BodyFailure(number: 2)) { try await failing.value }
        #expect(store.writer.batchCount == before + 1)
        let targets = try store.read { try $0.auditEvents(AuditFilter()) }.map(\.target)
        #expect(targets.sorted() == ["first", "last"])
        #expect(firstID != lastID)
        // The failed body's generation bump was rolled back with it.
        #expect(try await store.write { try $0.nextGeneration(vf: Fixtures.vf(9)) } == 1)
    }

    @Test func aTransactionEscapingItsBodyIsDead() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        final class Box: @unchecked Sendable { var transaction: Transaction? }
        let box = Box()
        try await store.write { box.transaction = $0 }
        #expect(throws: StoreError.closed) { try box.transaction?.appendAudit(Fixtures.event()) }
    }

    @Test func writesAndReadsAfterCloseAreRefused() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        store.close()
        store.close()
        await #expect(throws: StoreError.closed) { try await store.write { try $0.heldVFs() } }
        #expect(throws: StoreError.closed) { try store.read { try $0.heldVFs() } }
    }

    @Test func readersSeeASnapshotAndDoNotWaitForTheWriter() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        _ = try await store.allocate(vfIndex: 0)
        let release = DispatchSemaphore(value: 0)
        async let slow: Void = store.write { tx in
            _ = try tx.appendAudit(Fixtures.event())
            release.wait()
        }
        defer { release.signal() }
        try await waitUntil("the writer runs the slow body") { store.writer.batchCount >= 2 }
        // The writer holds an open transaction; a read still answers, from the last commit.
        #expect(try store.read { try $0.auditEvents(AuditFilter()) }.isEmpty)
        #expect(try store.read { try $0.heldVFs() }.count == 1)
        release.signal()
        try await slow
        #expect(try store.read { try $0.auditEvents(AuditFilter()) }.count == 1)
    }
}

@Suite struct DurabilityTests {
    let directory = TemporaryDirectory()

    /// What a crash leaves on disk: the database file and its WAL as they are while the store is open,
    /// never checkpointed. Every acknowledged write must be readable from that image.
    @Test func acknowledgedWritesAreInTheFilesWithoutACheckpoint() async throws {
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        var ids: [String] = []
        for index in 0..<20 { ids.append(try await store.allocate(vfIndex: index).id) }
        let crash = TemporaryDirectory()
        for suffix in ["", "-wal"] {
            try FileManager.default.copyItem(atPath: path + suffix, toPath: crash.file("sriovd.db" + suffix))
        }
        #expect(try FileManager.default.attributesOfItem(atPath: crash.file("sriovd.db-wal"))[.size] as? Int ?? 0 > 0)

        let recovered = try Store(path: crash.file("sriovd.db"))
        let page = try recovered.read { try $0.allocations(AllocationFilter(limit: 500)) }
        #expect(page.items.map(\.id) == ids)
        recovered.close()
        store.close()

        // A clean close checkpoints: the WAL is gone and the data is in the database file.
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        let reopened = try Store(path: path)
        defer { reopened.close() }
        #expect(try reopened.read { try $0.allocations(AllocationFilter(limit: 500)) }.items.map(\.id) == ids)
    }
}

@Suite struct IdempotencyTests {
    let directory = TemporaryDirectory()

    @Test func recordsRoundTripAndExpireAfterADay() async throws {
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        let fresh = IdempotencyRecord(
            key: "k-fresh", requestHash: "h1", status: 201, body: Array(#"{"id":"x"}"#.utf8),
            location: "/allocations/x", headers: [.init(name: "X-Extra", value: "1")], createdAt: Timestamp.now())
        let empty = IdempotencyRecord(
            key: "k-empty", requestHash: "h2", status: 204, body: [], createdAt: Timestamp.now())
        let old = IdempotencyRecord(
            key: "k-old", requestHash: "h3", status: 201, body: [0, 1, 2], createdAt: "2020-01-01T00:00:00.000Z")
        let almost = IdempotencyRecord(
            key: "k-23h", requestHash: "h4", status: 201, body: [1],
            createdAt: Timestamp.format(seconds: Int(Date().timeIntervalSince1970) - 23 * 3600, milliseconds: 0))
        for record in [fresh, empty, old, almost] { try await store.write { try $0.putIdempotencyRecord(record) } }
        #expect(try store.read { try $0.idempotencyRecord(key: "k-fresh") } == fresh)
        #expect(try store.read { try $0.idempotencyRecord(key: "k-empty") } == empty)
        #expect(try store.read { try $0.idempotencyRecord(key: "k-old") } == old)
        #expect(try store.read { try $0.idempotencyRecord(key: "nope") } == nil)

        #expect(try await store.purgeExpiredIdempotencyRecords() == 1)
        #expect(try store.read { try $0.idempotencyRecord(key: "k-old") } == nil)
        #expect(try store.read { try $0.idempotencyRecord(key: "k-23h") } == almost)

        // Opening also purges.
        try await store.write { try $0.putIdempotencyRecord(old) }
        store.close()
        let reopened = try Store(path: path)
        defer { reopened.close() }
        #expect(try reopened.read { try $0.idempotencyRecord(key: "k-old") } == nil)
        #expect(try reopened.read { try $0.idempotencyRecord(key: "k-fresh") } == fresh)
    }
}
