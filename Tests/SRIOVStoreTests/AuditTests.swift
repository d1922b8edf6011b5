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
