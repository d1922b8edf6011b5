import CSQLite
import FoundationEssentials
import Glibc

/// Tells SQLite to copy bound text and blobs before `sqlite3_bind_*` returns.
private var sqliteTransient: sqlite3_destructor_type {
    unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
}

/// One SQLite connection. Not thread-safe: exactly one thread uses it at a time (the writer thread, or the
/// reader that borrowed it from the pool), which is why it is opened with `SQLITE_OPEN_NOMUTEX`.
final class Database: @unchecked Sendable {
    /// How long a connection waits for a lock another process holds before SQLITE_BUSY.
    static let busyTimeoutMilliseconds: Int32 = 5000

    let handle: OpaquePointer
    let path: String
    private var statements: [String: Statement] = [:]
    /// JSON columns are written with sorted keys, so equal values store equal text.
    lazy var jsonEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
    lazy var jsonDecoder = JSONDecoder()
    private var isClosed = false

    /// Opens (`sqlite3_open_v2`) with extended result codes; closes the handle again when opening fails.
    init(path: String, flags: Int32, busyTimeoutMilliseconds: Int32 = Database.busyTimeoutMilliseconds)
        throws(StoreError)
    {
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close(handle)
            throw .sqlite(code: rc, message: message, sql: nil)
        }
        self.handle = handle
        self.path = path
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    deinit {
        close()
    }

    /// Finalizes every cached statement, then closes. Safe to call twice.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    /// The error SQLite holds for this connection now.
    func error(_ rc: Int32, sql: String?) -> StoreError {
        let code = rc == SQLITE_OK ? sqlite3_extended_errcode(handle) : rc
        return .sqlite(code: code, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// True while a transaction is open (SQLite can roll one back by itself after some errors).
    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes64(handle)) }

    /// Runs SQL text that may hold several statements (migrations). Nothing is bound.
    func executeScript(_ sql: String) throws(StoreError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        guard rc == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(message)
            throw .sqlite(code: sqlite3_extended_errcode(handle), message: text, sql: sql)
        }
    }

    /// A prepared statement kept for the connection's lifetime, reset and cleared for this use.
    func statement(_ sql: String) throws(StoreError) -> Statement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        let statement = try Statement(database: self, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Runs one statement to completion.
    func execute(_ sql: String, _ arguments: (any SQLBindable)?...) throws(StoreError) {
        let statement = try statement(sql)
        defer { statement.reset() }
        try statement.bind(arguments)
        while try statement.step() {}
    }

    /// Runs one query and maps every row.
    func query<T>(
        _ sql: String, _ arguments: [(any SQLBindable)?] = [], row: (Row) throws(StoreError) -> T
    ) throws(StoreError) -> [T] {
        let statement = try statement(sql)
        defer { statement.reset() }
        try statement.bind(arguments)
        var results: [T] = []
        while try statement.step() {
            results.append(try row(Row(handle: statement.handle)))
        }
        return results
    }

    /// Runs one query and maps its first row, if any.
    func queryFirst<T>(
        _ sql: String, _ arguments: [(any SQLBindable)?] = [], row: (Row) throws(StoreError) -> T
    ) throws(StoreError) -> T? {
        let statement = try statement(sql)
        defer { statement.reset() }
        try statement.bind(arguments)
        guard try statement.step() else { return nil }
        return try row(Row(handle: statement.handle))
    }

    /// Reads a PRAGMA's answer as text (nil when it answers nothing).
    func pragma(_ text: String) throws(StoreError) -> String? {
        let statement = try Statement(database: self, sql: "PRAGMA " + text)
        guard try statement.step() else { return nil }
        return Row(handle: statement.handle).optionalText(0)
    }
}

/// A prepared statement. Finalized in `deinit`.
final class Statement {
    let handle: OpaquePointer
    let sql: String
    private unowned let database: Database

    init(database: Database, sql: String) throws(StoreError) {
        var handle: OpaquePointer?
        let rc = sqlite3_prepare_v3(database.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard rc == SQLITE_OK, let handle else {
            sqlite3_finalize(handle)
            throw database.error(rc, sql: sql)
        }
        self.handle = handle
        self.sql = sql
        self.database = database
    }

    deinit {
        sqlite3_finalize(handle)
    }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func bind(_ arguments: [(any SQLBindable)?]) throws(StoreError) {
        for (offset, argument) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            if let argument {
                rc = argument.bind(to: handle, at: index)
            } else {
                rc = sqlite3_bind_null(handle, index)
            }
            guard rc == SQLITE_OK else { throw database.error(rc, sql: sql) }
        }
    }

    /// Steps once: true when a row is ready, false when done.
    func step() throws(StoreError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw database.error(rc, sql: sql)
        }
    }
}

/// The current row of a stepping statement; valid only inside the row closure.
struct Row {
    let handle: OpaquePointer

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }

    func optionalInt(_ column: Int32) -> Int? { isNull(column) ? nil : int(column) }

    func text(_ column: Int32) -> String { optionalText(column) ?? "" }

    func optionalText(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let bytes = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }
}

/// A value that can be bound to a statement parameter.
protocol SQLBindable {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32
}

extension String: SQLBindable {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        var text = self
        return text.withUTF8 { buffer in
            // An empty buffer may have no base address, and a NULL pointer would bind SQL NULL.
            guard let base = buffer.baseAddress, buffer.count > 0 else {
                return sqlite3_bind_text(statement, index, "", 0, sqliteTransient)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                sqlite3_bind_text(statement, index, $0, Int32(buffer.count), sqliteTransient)
            }
        }
    }
}

extension Int: SQLBindable {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        sqlite3_bind_int64(statement, index, Int64(self))
    }
}

extension Int64: SQLBindable {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        sqlite3_bind_int64(statement, index, self)
    }
}

extension Array: SQLBindable where Element == UInt8 {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        withUnsafeBytes { buffer in
            // A NULL pointer would bind SQL NULL, not an empty blob.
            guard let base = buffer.baseAddress, buffer.count > 0 else {
                return sqlite3_bind_zeroblob(statement, index, 0)
            }
            return sqlite3_bind_blob64(statement, index, base, UInt64(buffer.count), sqliteTransient)
        }
    }
}
