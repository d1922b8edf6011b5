import CSQLite
import Glibc

/// `sriovd backup`: a consistent copy of the database, taken while the daemon serves.
///
/// SQLite's online backup API copies every page in one step from a read transaction on the source: in WAL mode that
/// is a snapshot of the last commit before it began, and the daemon's writer goes on meanwhile. The copy is written
/// beside the destination, fsynced, checked (`PRAGMA quick_check`), renamed into place, and the folder fsynced.
public enum DatabaseBackup {
    /// What was copied.
    public struct Summary: Sendable, Equatable {
        public var pages: Int
        public var bytes: Int
        /// The migrations the copy has applied, the newest last.
        public var migrations: [String]
        public var allocations: Int
        public var auditEvents: Int
    }

    /// Copies the sriovd database at `source` to `destination`, which must not exist (its folder must).
    public static func copy(from source: String, to destination: String) throws(StoreError) -> Summary {
        guard access(destination, F_OK) != 0 else {
            throw .sqlite(code: SQLITE_CANTOPEN, message: "\(destination) exists: give a new path", sql: nil)
        }
        guard access(source, R_OK) == 0 else {
            throw .sqlite(code: SQLITE_CANTOPEN, message: "\(source): \(String(cString: strerror(errno)))", sql: nil)
        }
        let from = try Database(path: source, flags: SQLITE_OPEN_READONLY)
        defer { from.close() }
        guard try from.pragma("application_id") == String(Migrator.applicationID) else {
            throw .notASriovdDatabase("\(source) is not a sriovd database (its application_id differs)")
        }
        let partial = destination + ".partial-\(getpid())"
        unlink(partial)
        do throws(StoreError) {
            let pages = try copyPages(from: from, to: partial)
            // The copy holds what the database holds (tokens' names, the audit): readable by its owner only.
            guard chmod(partial, 0o600) == 0 else { throw systemError("chmod \(partial)") }
            try fsyncPath(partial, directory: false)
            let summary = try verify(partial, pages: pages)
            guard rename(partial, destination) == 0 else { throw systemError("rename \(partial) to \(destination)") }
            try fsyncPath(parentFolder(of: destination), directory: true)
            return summary
        } catch {
            unlink(partial)
            throw error
        }
    }

    /// Every page of `from` into a new database at `path`, in one step; returns the page count.
    private static func copyPages(from: Database, to path: String) throws(StoreError) -> Int {
        let to = try Database(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        defer { to.close() }
        guard let backup = sqlite3_backup_init(to.handle, "main", from.handle, "main") else {
            throw to.error(SQLITE_OK, sql: "sqlite3_backup_init")
        }
        var rc = sqlite3_backup_step(backup, -1)
        // The source's lock is busy only while a checkpoint or recovery holds it: wait and go on.
        var attempts = 0
        while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && attempts < 100 {
            attempts += 1
            sqlite3_sleep(50)
            rc = sqlite3_backup_step(backup, -1)
        }
        let pages = Int(sqlite3_backup_pagecount(backup))
        let finished = sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE else { throw .sqlite(code: rc, message: String(cString: sqlite3_errstr(rc)), sql: nil) }
        guard finished == SQLITE_OK else { throw to.error(finished, sql: "sqlite3_backup_finish") }
        return pages
    }

    /// Opens the copy read-only: `quick_check` must answer ok; reads what it holds.
    private static func verify(_ path: String, pages: Int) throws(StoreError) -> Summary {
        let copy = try Database(path: path, flags: SQLITE_OPEN_READONLY)
        defer { copy.close() }
        let check = try copy.query("PRAGMA quick_check") { $0.text(0) }
        guard check == ["ok"] else { throw .damagedDatabase(check) }
        var info = stat()
        stat(path, &info)
        return Summary(
            pages: pages, bytes: Int(info.st_size),
            migrations: try copy.query("SELECT id FROM sriovd_migrations ORDER BY id") { $0.text(0) },
            allocations: try copy.queryFirst("SELECT count(*) FROM allocations") { $0.int(0) } ?? 0,
            auditEvents: try copy.queryFirst("SELECT count(*) FROM audit_events") { $0.int(0) } ?? 0)
    }

    private static func fsyncPath(_ path: String, directory: Bool) throws(StoreError) {
        let fd = open(path, (directory ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw systemError("open \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw systemError("fsync \(path)") }
    }

    private static func parentFolder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func systemError(_ what: String) -> StoreError {
        .sqlite(code: SQLITE_IOERR, message: "\(what): \(String(cString: strerror(errno)))", sql: nil)
    }
}
