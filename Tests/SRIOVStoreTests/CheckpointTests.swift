import Foundation
import SRIOVCore
import Testing

@testable import SRIOVStore

@Suite struct CheckpointTests {
    let directory = TemporaryDirectory()

    /// A WAL past the checkpoint size is copied into the database file by the checkpoint thread while the store
    /// stays open (the writer's connection never checkpoints: SQLite's automatic checkpoint is replaced), and
    /// everything acknowledged is there after a reopen.
    @Test func theCheckpointThreadCopiesTheWALIntoTheDatabaseWhileTheStoreIsOpen() async throws {
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        let initialSize = try fileSize(path)
        let details = String(repeating: "x", count: 600)
        // About 5 MB of audit rows, in 50 transactions: well past 1,000 pages of WAL.
        for batch in 0..<50 {
            _ = try await store.write { tx in
                for number in 0..<150 {
                    try tx.appendAudit(
                        AuditEvent(
                            at: Timestamp.now(), actor: "test", action: "allocation.create",
                            target: "b\(batch)-\(number)", outcome: .success, details: #"{"pad":"\#(details)"}"#))
                }
            }
        }
        // Bounded poll: the checkpoint runs on its own thread, shortly after the commit that asked for it.
        var grown = try fileSize(path)
        for _ in 0..<1000 where grown < initialSize + 2_000_000 {
            try await Task.sleep(for: .milliseconds(10))
            grown = try fileSize(path)
        }
        #expect(grown >= initialSize + 2_000_000, "database file \(initialSize) -> \(grown) bytes: no checkpoint ran")
        store.close()

        let reopened = try Store(path: path)
        defer { reopened.close() }
        // Every row is there: paged through by id (a page holds at most 500).
        var count = 0
        var after: Int64? = nil
        while true {
            let page = try reopened.read { try $0.auditEvents(AuditFilter(after: after, limit: 500)) }
            guard let last = page.last else { break }
            count += page.filter { $0.actor == "test" }.count
            after = last.id
        }
        #expect(count == 50 * 150)
    }

    private func fileSize(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}
