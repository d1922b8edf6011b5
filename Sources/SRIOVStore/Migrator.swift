import CSQLite
import SRIOVCore

/// One schema step: `migrations/NNNN_name.sql`, identified by its file name without `.sql`.
struct Migration: Hashable, Sendable {
    let id: String
    let sql: String

    /// The SHA-256 of the SQL text, recorded when applied.
    var checksum: String { SHA256.hex(sql.utf8) }
}

/// Applies migrations in order, each in its own `BEGIN IMMEDIATE` transaction, and refuses databases that are
/// not sriovd's or that a different sriovd wrote.
enum Migrator {
    /// `PRAGMA application_id` of every sriovd database: "SRIV" in ASCII.
    static let applicationID: Int32 = 0x5352_4956
    /// The table of applied migrations.
    static let table = "sriovd_migrations"

    /// Decides, reading only, what `migrate` would apply; throws the reason to refuse the database instead.
    static func pending(in database: Database, known: [Migration]) throws(StoreError) -> [Migration] {
        let applicationID = try readApplicationID(database)
        guard applicationID == 0 || applicationID == Self.applicationID else {
            throw .notASriovdDatabase(
                "its application_id is \(hex(applicationID)), sriovd's is \(hex(Self.applicationID))")
        }
        let hasTable =
            try database.queryFirst(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [table]
            ) { _ in true } ?? false
        guard hasTable else {
            let objects = try database.queryFirst("SELECT count(*) FROM sqlite_schema") { $0.int(0) } ?? 0
            guard objects == 0 else {
                throw .notASriovdDatabase("it holds \(objects) schema objects but no \(table) table")
            }
            return known
        }
        guard applicationID == Self.applicationID else {
            throw .notASriovdDatabase("it has a \(table) table but application_id 0")
        }
        let applied = try database.query("SELECT id, sha256 FROM \(table) ORDER BY id") { row in
            (id: row.text(0), checksum: row.text(1))
        }
        let knownByID = Dictionary(known.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let unknown = applied.map(\.id).filter { knownByID[$0] == nil }
        guard unknown.isEmpty else { throw .newerDatabase(unknown: unknown) }
        for migration in applied where knownByID[migration.id]?.checksum != migration.checksum {
            throw .migrationChanged(migration.id)
        }
        let appliedIDs = Set(applied.map(\.id))
        return known.filter { !appliedIDs.contains($0.id) }
    }

    /// Applies what `pending` lists, one transaction per migration, re-checking inside each transaction.
    static func migrate(_ database: Database, known: [Migration]) throws(StoreError) {
        precondition(zip(known, known.dropFirst()).allSatisfy { $0.id < $1.id }, "migrations out of order")
        while true {
            try database.execute("BEGIN IMMEDIATE")
            do {
                guard let next = try pending(in: database, known: known).first else {
                    try database.execute("ROLLBACK")
                    return
                }
                try database.executeScript(
                    """
                    CREATE TABLE IF NOT EXISTS \(table) (
                        id         TEXT PRIMARY KEY NOT NULL,
                        sha256     TEXT NOT NULL,
                        applied_at TEXT NOT NULL
                    ) STRICT;
                    PRAGMA application_id = \(applicationID);
                    """)
                try database.executeScript(next.sql)
                try database.execute(
                    "INSERT INTO \(table) (id, sha256, applied_at) VALUES (?, ?, ?)", next.id, next.checksum,
                    Timestamp.now())
                try database.execute("COMMIT")
            } catch {
                if database.isInTransaction { try? database.execute("ROLLBACK") }
                throw error
            }
        }
    }

    private static func readApplicationID(_ database: Database) throws(StoreError) -> Int32 {
        do {
            return Int32(truncatingIfNeeded: Int(try database.pragma("application_id") ?? "0") ?? 0)
        } catch .sqlite(let code, _, _) where code & 0xff == SQLITE_NOTADB {
            throw .notASriovdDatabase("it is not an SQLite database")
        }
    }

    private static func hex(_ value: Int32) -> String {
        "0x" + String(UInt32(bitPattern: value), radix: 16)
    }
}
