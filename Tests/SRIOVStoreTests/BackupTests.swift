import Foundation
import SRIOVCore
import Synchronization
import Testing

@testable import SRIOVStore

/// `sriovd backup`: SQLite's online backup API on a database whose writer keeps committing.
@Suite struct BackupTests {
    let directory = TemporaryDirectory()

    /// One allocation and its audit event per transaction, as the daemon commits them.
    private static func allocate(_ store: Store, index: Int) async throws {
        try await store.write { tx in
            let vf = Fixtures.vf(index)
            let allocation = Fixtures.allocation(
                vfIndex: index, owner: "vm-\(index)", generation: try tx.nextGeneration(vf: vf))
            try tx.insertAllocation(allocation)
            try tx.appendAudit(
                AuditEvent(
                    at: Timestamp.now(), actor: "test", action: "allocation.create", target: allocation.id,
                    outcome: .success))
        }
    }

    /// Copies taken while allocations commit are whole: each holds as many allocations as `allocation.create`
    /// events (both come from one transaction), passes quick_check and opens as a sriovd database.
    @Test func copiesTakenWhileAllocationsCommitAreConsistent() async throws {
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        let total = 2000
        let finished = Atomic(false)
        let writers = Task {
            defer { finished.store(true, ordering: .releasing) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<4 {
                    group.addTask {
                        for index in stride(from: lane, to: total, by: 4) {
                            try await Self.allocate(store, index: index)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Copies one after the other for as long as the writers go on (at most 200).
        var copies: [(path: String, summary: DatabaseBackup.Summary)] = []
        var partial = 0
        while !finished.load(ordering: .acquiring) && copies.count < 200 {
            let out = directory.file("copy-\(copies.count).db")
            let summary = try DatabaseBackup.copy(from: path, to: out)
            copies.append((out, summary))
            if summary.allocations > 0 && summary.allocations < total { partial += 1 }
        }
        try await writers.value
        let last = directory.file("copy-final.db")
        copies.append((last, try DatabaseBackup.copy(from: path, to: last)))
        store.close()

        #expect(partial >= 2, "copies were taken while allocations were being made (\(partial) of \(copies.count))")
        for (copy, summary) in copies {
            try withRawDatabase(copy) { database in
                #expect(try database.query("PRAGMA quick_check") { $0.text(0) } == ["ok"])
                let allocations = try database.queryFirst("SELECT count(*) FROM allocations") { $0.int(0) }
                let events = try database.queryFirst(
                    "SELECT count(*) FROM audit_events WHERE action = 'allocation.create'"
                ) { $0.int(0) }
                #expect(allocations == events, "\(copy): a transaction's two rows travel together")
                #expect(allocations == summary.allocations && events == summary.auditEvents)
            }
            #expect(summary.migrations == EmbeddedMigrations.all.map(\.id))
            #expect(!FileManager.default.fileExists(atPath: copy + "-wal"), "the copy is one file")
        }
        #expect(copies.last?.summary.allocations == total, "the copy after the writes holds every allocation")
        // The copy opens as sriovd opens its database, and reads like the original.
        let reopened = try Store(path: last)
        #expect(try reopened.read { try $0.heldVFs() }.count == total)
        reopened.close()
    }

    @Test func refusesAnExistingDestinationAndAForeignDatabase() throws {
        let path = directory.file("sriovd.db")
        try Store(path: path).close()
        let existing = directory.file("exists.db")
        #expect(FileManager.default.createFile(atPath: existing, contents: Data("keep".utf8)))
        #expect(throws: StoreError.self) { try DatabaseBackup.copy(from: path, to: existing) }
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep", "left as it was")

        let foreign = directory.file("foreign.db")
        try withRawDatabase(foreign) { try $0.executeScript("CREATE TABLE t (x)") }
        #expect(throws: StoreError.self) { try DatabaseBackup.copy(from: foreign, to: directory.file("out.db")) }
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(!left.contains { $0.hasPrefix("out.db") }, "no partial copy is left: \(left)")
    }
}
