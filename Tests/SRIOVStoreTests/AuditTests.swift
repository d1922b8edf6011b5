import Foundation
import SRIOVCore
import Testing

@testable import SRIOVStore

@Suite struct AuditTests {
    let directory = TemporaryDirectory()

    @Test func theAuditTableRefusesUpdateAndDelete() async throws {
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        let id = try await store.write { try $0.appendAudit(Fixtures.event()) }
        store.close()
        let database = try Database(path: path, flags: openReadWriteCreate)
        defer { database.close() }
        for sql in [
            "UPDATE audit_events SET outcome = 'failure' WHERE id = ?", "DELETE FROM audit_events WHERE id = ?",
        ] {
            do {
                try database.execute(sql, id)
                Issue.record("\(sql) succeeded")
            } catch {
                #expect(error.description.contains("append-only"))
            }
        }
        #expect(try database.queryFirst("SELECT outcome FROM audit_events") { $0.text(0) } == "success")
    }

    /// The one path that may delete: the retention window, opened in the deleting transaction, for events older
    /// than its cutoff and up to its id, and nothing else.
    @Test func onlyTheRetentionWindowLetsOldEventsBeDeleted() async throws {
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        var appended: [Int64] = []
        for at in ["2020-01-01T00:00:00.000Z", "2020-02-01T00:00:00.000Z", "2020-03-01T00:00:00.000Z"] {
            appended.append(try await store.write { try $0.appendAudit(Fixtures.event(at: at)) })
        }
        appended.append(try await store.write { try $0.appendAudit(Fixtures.event()) })
        let ids = appended
        let cutoff = "2021-01-01T00:00:00.000Z"
        #expect(try store.read { try $0.auditRetentionBoundary(before: cutoff) } == ids[2])
        #expect(try store.read { try $0.auditRetentionBoundary(before: "2020-01-01T00:00:00.000Z") } == nil)
        // A window over a recent event is refused, and deletes nothing.
        await #expect(throws: StoreError.self) {
            try await store.write { try $0.removeAuditEvents(through: ids[3], cutoff: cutoff) }
        }
        #expect(try await store.write { try $0.removeAuditEvents(through: ids[1], cutoff: cutoff) } == 2)
        store.close()

        let database = try Database(path: path, flags: openReadWriteCreate)
        defer { database.close() }
        let windows = try database.queryFirst("SELECT count(*) FROM audit_retention_window") { $0.int(0) }
        #expect(windows == 0, "the window is closed in the transaction that opened it")
        let left = try database.query("SELECT id FROM audit_events ORDER BY id") { $0.int64(0) }
        #expect(left == [ids[2], ids[3]])
        // Outside the window, or beyond its id, DELETE is refused as before.
        for sql in ["DELETE FROM audit_events WHERE id = \(ids[2])", "DELETE FROM audit_events"] {
            #expect(throws: StoreError.self) { try database.execute(sql) }
        }
        try database.execute("BEGIN")
        try database.execute(
            "INSERT INTO audit_retention_window (id, through_id, cutoff) VALUES (1, ?, ?)", ids[2], cutoff)
        #expect(throws: StoreError.self) { try database.execute("DELETE FROM audit_events WHERE id = ?", ids[3]) }
        #expect(throws: StoreError.self) {
            try database.execute("UPDATE audit_retention_window SET through_id = ?", ids[3])
        }
        try database.execute("ROLLBACK")
        let after = try database.query("SELECT id FROM audit_events ORDER BY id") { $0.int64(0) }
        #expect(after == [ids[2], ids[3]])
    }

    @Test func idsGrowAndPagesAndFiltersWork() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        var ids: [Int64] = []
        for index in 0..<30 {
            let event = Fixtures.event(
                action: index.isMultiple(of: 3) ? "allocation.release" : "allocation.create",
                target: "t\(index % 2)", actor: index < 10 ? "alice" : "bob",
                at: String(format: "2026-11-25T09:%02d:00.000Z", index))
            ids.append(try await store.write { try $0.appendAudit(event) })
        }
        #expect(ids == ids.sorted() && Set(ids).count == 30)

        var seen: [Int64] = []
        var after: Int64?
        while true {
            let page = try store.read { try $0.auditEvents(AuditFilter(after: after, limit: 7)) }
            guard let last = page.last else { break }
            #expect(page.count <= 7)
            seen += page.map(\.id)
            after = last.id
        }
        #expect(seen == ids)

        let first = try store.read { try $0.auditEvents(AuditFilter(limit: 1)) }.first
        #expect(first?.actor == "alice" && first?.details == #"{"k":1}"# && first?.outcome == .success)
        #expect(try store.read { try $0.auditEvents(AuditFilter(target: "t1")) }.count == 15)
        #expect(try store.read { try $0.auditEvents(AuditFilter(action: "allocation.release")) }.count == 10)
        #expect(try store.read { try $0.auditEvents(AuditFilter(target: "t0", actor: "alice")) }.count == 5)
        // Bounds are inclusive, and any RFC 3339 form is compared in UTC.
        let window = try store.read {
            try $0.auditEvents(AuditFilter(since: "2026-11-25T10:05:00+01:00", until: "2026-11-25T09:09:00Z"))
        }
        #expect(window.map(\.at) == (5...9).map { String(format: "2026-11-25T09:%02d:00.000Z", $0) })
    }
}

@Suite struct DatabaseTests {
    let directory = TemporaryDirectory()

    /// Errors keep the extended code, SQLite's message and the SQL, never the bound values.
    @Test func errorsCarryCodeMessageAndSQLButNoValues() throws {
        let database = try Database(path: directory.file("plain.db"), flags: openReadWriteCreate)
        defer { database.close() }
        try database.executeScript("CREATE TABLE t (secret TEXT NOT NULL UNIQUE)")
        try database.execute("INSERT INTO t (secret) VALUES (?)", "hunter2")
        do {
            try database.execute("INSERT INTO t (secret) VALUES (?)", "hunter2")
            Issue.record("a duplicate was inserted")
        } catch .sqlite(let code, let message, let sql) {
            #expect(code == 2067)  // SQLITE_CONSTRAINT_UNIQUE
            #expect(message.contains("UNIQUE constraint failed: t.secret"))
            #expect(sql == "INSERT INTO t (secret) VALUES (?)")
            #expect(!"\(code) \(message) \(sql ?? "")".contains("hunter2"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        // Empty text binds as empty text, not NULL; empty blobs as empty blobs.
        try database.execute("INSERT INTO t (secret) VALUES (?)", "")
        let kinds = try database.query("SELECT typeof(?), length(?)", [[UInt8](), ""]) { [$0.text(0), $0.text(1)] }
        #expect(kinds == [["blob", "0"]])
    }
}
