import CSQLite
import FoundationEssentials
import Glibc
import SRIOVCore
import Synchronization
import Threading

/// The sriovd database: inventory, allocations, audit history, idempotency records and intents.
///
/// One writer connection on its own thread commits writes in groups (see `write`); a small pool of reader
/// connections serves `read` (WAL: readers never wait for the writer). Every write acknowledged by `write`
/// returning is in a committed transaction with `synchronous=FULL`: it survives a crash and a power loss.
public final class Store: Sendable {
    /// The database file.
    public let path: String
    let writer: Writer
    private let readers: ReaderPool

    /// How to open the database.
    public struct Options: Sendable {
        /// Create a new, empty database even where the file is missing or empty while files SQLite keeps beside
        /// a database (`-wal`, `-shm`, `-journal`) are there; those files are first renamed aside
        /// (`NAME.before-init-SECONDS`). A database with content is never touched by this.
        public var initialize: Bool
        /// How long the writer waits for a lock another connection holds before its write fails (SQLITE_BUSY).
        public var busyTimeout: Duration

        public init(initialize: Bool = false, busyTimeout: Duration = .seconds(5)) {
            self.initialize = initialize
            self.busyTimeout = busyTimeout
        }
    }

    /// Files that `Options.initialize` renamed aside at open, by their new paths (empty almost always).
    public let setAside: [String]

    /// Opens the database at `path` (its folder must exist), refuses it when it is not a sriovd database, was
    /// written by a different sriovd, is damaged (`PRAGMA quick_check`), or is missing or empty while a
    /// database's other files are beside it (touching nothing), then applies this binary's migrations.
    public convenience init(path: String, options: Options = Options()) throws(StoreError) {
        try self.init(path: path, migrations: EmbeddedMigrations.all, options: options)
    }

    /// Opens with the given migrations instead of the embedded ones (tests).
    init(path: String, migrations: [Migration], readerCount: Int = 4, options: Options = Options())
        throws(StoreError)
    {
        // Everything that can refuse the database runs first, on a read-only connection.
        setAside = try Self.verify(path: path, migrations: migrations, initialize: options.initialize)
        let busy = options.busyTimeout.components
        let busyMilliseconds = Int32(clamping: busy.seconds * 1000 + busy.attoseconds / 1_000_000_000_000_000)
        let database = try Database(
            path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, busyTimeoutMilliseconds: busyMilliseconds)
        try Self.configureWriter(database)
        try Migrator.migrate(database, known: migrations)
        _ = try database.purgeIdempotencyRecords(createdBefore: Self.idempotencyCutoff())
        self.path = path
        self.writer = Writer(
            database: database,
            checkpointer: try Checkpointer(path: path, busyTimeoutMilliseconds: busyMilliseconds))
        self.readers = ReaderPool(path: path, capacity: max(1, readerCount))
    }

    deinit {
        close()
    }

    /// Runs `body` in the write transaction and returns its result once that transaction is durably committed.
    ///
    /// Group commit: the writer thread takes every pending body, runs them in one `BEGIN IMMEDIATE … COMMIT`,
    /// each inside its own SAVEPOINT, and resumes the callers only after the single COMMIT (one fsync). A body
    /// that throws rolls back only its own savepoint and its caller gets the error; when the COMMIT fails,
    /// every caller of the batch gets that error. Bodies are synchronous and must block on nothing but
    /// SQLite. The `Transaction` is valid only inside the body.
    public func write<T: Sendable>(_ body: @escaping @Sendable (Transaction) throws -> T) async throws -> T {
        let submitted = PhaseLatencies.now()
        defer { PhaseLatencies.shared.record(.commitWait, since: submitted) }
        return try await withCheckedThrowingContinuation { continuation in
            let request = WriteRequest(body: body, continuation: continuation, submitted: submitted)
            do {
                try writer.submit(request)
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Runs `body` on a reader connection inside one read transaction: a consistent snapshot of everything
    /// committed before it started. Blocks only when every reader of the pool is busy.
    public func read<T>(_ body: (ReadView) throws -> T) throws -> T {
        let database = try readers.acquire()
        defer { readers.release(database) }
        try database.execute("BEGIN")
        defer { if database.isInTransaction { try? database.execute("ROLLBACK") } }
        let view = ReadView(database)
        defer { view.invalidate() }
        return try body(view)
    }

    /// Calls `observer` after every transaction that commits, on the writer thread: it must only note the fact
    /// (set a flag, signal a thread) and return.
    public func observeCommits(_ observer: @escaping @Sendable () -> Void) {
        writer.commitObservers.withLock { $0.append(observer) }
    }

    /// Deletes idempotency records older than the retention (24 h); returns how many. Also done at open.
    @discardableResult
    public func purgeExpiredIdempotencyRecords() async throws -> Int {
        let cutoff = Self.idempotencyCutoff()
        return try await write { try $0.purgeIdempotencyRecords(createdBefore: cutoff) }
    }

    /// Waits for pending writes, checkpoints the WAL into the database file and closes every connection.
    /// Later calls throw `.closed`. Safe to call twice.
    public func close() {
        readers.close()
        writer.close()
    }

    /// Now minus the idempotency retention, formatted.
    private static func idempotencyCutoff() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let milliseconds = Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
        let cutoff = milliseconds - IdempotencyRecord.retentionMilliseconds
        return Timestamp.format(seconds: Int(cutoff / 1000), milliseconds: Int(cutoff % 1000))
    }

    /// Refuses, without writing anything, a database that is not sriovd's, that a different sriovd wrote, or
    /// that is damaged. A missing or empty file is a new database only when no file SQLite keeps beside a
    /// database is there, or when `initialize` says so (those files are then renamed aside; their new paths
    /// are returned).
    private static func verify(path: String, migrations: [Migration], initialize: Bool) throws(StoreError)
        -> [String]
    {
        var info = stat()
        let exists = stat(path, &info) == 0
        guard exists, info.st_size > 0 else {
            return try checkNewDatabase(
                path: path, file: exists ? "empty (0 bytes)" : "missing", initialize: initialize)
        }
        // A read-only connection to a WAL database creates the -wal and -shm files and cannot delete them on
        // close; remove them again when they were not there before and the WAL stayed empty.
        let wal = path + "-wal"
        let shm = path + "-shm"
        let hadSidecars = access(wal, F_OK) == 0 || access(shm, F_OK) == 0
        let database = try Database(path: path, flags: SQLITE_OPEN_READONLY)
        defer {
            database.close()
            if !hadSidecars, stat(wal, &info) == 0, info.st_size == 0 {
                unlink(wal)
                unlink(shm)
            }
        }
        do {
            _ = try Migrator.pending(in: database, known: migrations)
            try quickCheck(database)
        } catch .sqlite(let code, let message, _) where code & 0xff == SQLITE_CORRUPT {
            throw .damagedDatabase([message])
        }
        return []
    }

    /// The files SQLite may keep beside a database.
    static let sidecarSuffixes = ["-wal", "-shm", "-journal"]

    /// A missing or empty database file: new when nothing of an earlier database is beside it; otherwise
    /// refused, or, with `initialize`, those files are renamed aside and their new paths returned.
    private static func checkNewDatabase(path: String, file: String, initialize: Bool) throws(StoreError)
        -> [String]
    {
        var found: [(path: String, size: Int)] = []
        for suffix in sidecarSuffixes {
            var info = stat()
            if lstat(path + suffix, &info) == 0 { found.append((path + suffix, Int(info.st_size))) }
        }
        guard !found.isEmpty else { return [] }
        guard initialize else {
            throw .sidecarsWithoutDatabase(
                path: path, file: file, found: found.map { "\($0.path) (\($0.size) bytes)" })
        }
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var moved: [String] = []
        for sidecar in found {
            let target = "\(sidecar.path).before-init-\(spec.tv_sec)"
            guard rename(sidecar.path, target) == 0 else {
                let reason = String(cString: strerror(errno))
                throw .sqlite(
                    code: SQLITE_CANTOPEN, message: "cannot rename \(sidecar.path) to \(target): \(reason)", sql: nil)
            }
            moved.append(target)
        }
        return moved
    }

    /// Throws `.damagedDatabase` with its findings unless `PRAGMA quick_check` answers `ok`. The check can
    /// list findings and then fail itself with SQLITE_CORRUPT; the findings are kept, then SQLite's message.
    private static func quickCheck(_ database: Database) throws(StoreError) {
        let statement = try Statement(database: database, sql: "PRAGMA quick_check")
        var findings: [String] = []
        do {
            while try statement.step() {
                // The first finding comes after a heading line, `*** in database main ***`, in the same row.
                let lines = Row(handle: statement.handle).text(0).split(separator: "\n")
                findings += lines.filter { !$0.hasPrefix("*** ") }.map(String.init)
            }
        } catch .sqlite(let code, let message, _) where code & 0xff == SQLITE_CORRUPT {
            findings.append(message)
        }
        guard findings == ["ok"] else { throw .damagedDatabase(findings) }
    }

    private static func configureWriter(_ database: Database) throws(StoreError) {
        try database.executeScript("PRAGMA foreign_keys = ON")
        let mode = try database.pragma("journal_mode = WAL")
        guard mode?.lowercased() == "wal" else {
            throw .sqlite(
                code: SQLITE_ERROR, message: "journal_mode is \(mode ?? "unknown"), not wal",
                sql: "PRAGMA journal_mode = WAL")
        }
        try database.executeScript("PRAGMA synchronous = FULL")
        // Each write body runs in a savepoint, whose sub-journal would otherwise go to a temporary file: one
        // extra pwrite per page first changed in each body (measured: +25 % throughput at 64 callers).
        try database.executeScript("PRAGMA temp_store = MEMORY")
        // Checkpoints reuse the WAL from its start; after a burst, trim it back to this size.
        try database.executeScript("PRAGMA journal_size_limit = \(64 << 20)")
        guard try database.pragma("synchronous") == "2", try database.pragma("foreign_keys") == "1" else {
            throw .sqlite(
                code: SQLITE_ERROR, message: "synchronous=FULL or foreign_keys=ON did not take",
                sql: "PRAGMA synchronous = FULL")
        }
    }
}

// MARK: - Group commit

/// A queued write body with the caller waiting for it.
protocol PendingWrite: AnyObject, Sendable {
    /// When the caller submitted it (`PhaseLatencies.now()`).
    var submitted: UInt64 { get }
    /// Runs the body inside its own savepoint of the open transaction and keeps the outcome; returns the
    /// error when it failed with SQLite's.
    func perform(on database: Database) -> StoreError?
    /// Resumes the caller: with the kept outcome, or with `failure` when the batch did not commit.
    func finish(failure: StoreError?)
}

/// Touched by the caller's thread until `submit`, then only by the writer thread.
final class WriteRequest<T: Sendable>: PendingWrite, @unchecked Sendable {
    private let body: @Sendable (Transaction) throws -> T
    private let continuation: CheckedContinuation<T, any Error>
    private var result: Result<T, any Error> = .failure(StoreError.closed)
    let submitted: UInt64

    init(
        body: @escaping @Sendable (Transaction) throws -> T, continuation: CheckedContinuation<T, any Error>,
        submitted: UInt64 = PhaseLatencies.now()
    ) {
        self.body = body
        self.continuation = continuation
        self.submitted = submitted
    }

    func perform(on database: Database) -> StoreError? {
        let start = PhaseLatencies.now()
        defer { PhaseLatencies.shared.record(.body, since: start) }
        do {
            try database.execute("SAVEPOINT write_body")
        } catch {
            result = .failure(error)
            return error
        }
        let transaction = Transaction(database)
        do {
            let value = try body(transaction)
            transaction.invalidate()
            try database.execute("RELEASE write_body")
            result = .success(value)
            return nil
        } catch {
            transaction.invalidate()
            if database.isInTransaction {
                try? database.execute("ROLLBACK TO write_body")
                try? database.execute("RELEASE write_body")
            }
            result = .failure(error)
            return error as? StoreError
        }
    }

    func finish(failure: StoreError?) {
        if let failure {
            continuation.resume(throwing: failure)
        } else {
            continuation.resume(with: result)
        }
    }
}

/// The writer connection and the thread that owns it.
final class Writer: @unchecked Sendable {
    /// At most this many bodies share one transaction, to bound a batch's latency.
    static let maximumBatch = 1024

    let database: Database
    /// Runs the WAL's checkpoints off the commit path.
    let checkpointer: Checkpointer?
    /// What the last commit said about the database; written only by the writer thread.
    let health = HealthRecord()
    /// Told after every transaction that committed (on the writer thread: it must return at once).
    let commitObservers = Mutex<[@Sendable () -> Void]>([])
    private let condition = ConditionLock()
    private var queue: [any PendingWrite] = []
    private var isClosing = false
    private var isFinished = false
    private var batches = 0
    /// The writer thread, once it has started.
    private var thread: pthread_t?

    /// How many transactions the writer has committed or tried to (tests use it to see grouping).
    var batchCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return batches
    }

    /// Bodies waiting for the writer thread.
    var pendingCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count
    }

    init(database: Database, checkpointer: Checkpointer?) {
        self.database = database
        self.checkpointer = checkpointer
        installWALHook()
        do {
            try DetachedThread.spawn(name: "store-writer") { [self] in
                condition.withLock { thread = pthread_self() }
                run()
            }
        } catch {
            // Only at startup, and only when the process cannot make a thread at all: nothing can go on.
            fatalError("sriovd: cannot start the store's writer thread: \(error)")
        }
    }

    func submit(_ request: any PendingWrite) throws(StoreError) {
        condition.lock()
        defer { condition.unlock() }
        guard !isClosing else { throw .closed }
        queue.append(request)
        condition.broadcast()
    }

    /// Lets the thread drain the queue, checkpoint and close, and waits for it.
    /// Called on the writer thread itself (the last reference to the store dropped by a finished write), it
    /// cannot wait for itself: the thread then closes once it has drained the queue.
    func close() {
        condition.lock()
        isClosing = true
        condition.broadcast()
        if let thread, pthread_equal(thread, pthread_self()) != 0 {
            // The writer thread itself: it closes once the queue is drained.
        } else {
            while !isFinished { condition.wait() }
        }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !isClosing { condition.wait() }
            if queue.isEmpty {
                condition.unlock()
                break
            }
            let batch: [any PendingWrite]
            if queue.count <= Self.maximumBatch {
                batch = queue
                queue = []
            } else {
                batch = Array(queue.prefix(Self.maximumBatch))
                queue.removeFirst(Self.maximumBatch)
            }
            batches += 1
            condition.unlock()
            let start = PhaseLatencies.now()
            for request in batch { PhaseLatencies.shared.record(.queue, nanoseconds: start &- request.submitted) }
            commit(batch)
        }
        checkpointer?.close()
        try? database.executeScript("PRAGMA wal_checkpoint(TRUNCATE)")
        database.close()
        condition.lock()
        isFinished = true
        thread = nil  // the thread's closure holds self
        condition.broadcast()
        condition.unlock()
    }

    /// Runs the bodies in one transaction and commits once. Should SQLite roll the transaction back by itself
    /// (a disk error), the bodies run so far fail with that error and the rest go on in a new transaction.
    /// Notes in `health` every transaction that could not commit, and every one that could.
    private func commit(_ batch: [any PendingWrite]) {
        var next = batch.startIndex
        while next < batch.endIndex {
            do {
                try database.execute("BEGIN IMMEDIATE")
            } catch {
                health.noteFailure(error)
                for request in batch[next...] { request.finish(failure: error) }
                return
            }
            let first = next
            var abort: StoreError?
            // A body that met a storage fault (a full disk, an I/O error) while the transaction went on.
            var fault: StoreError?
            while next < batch.endIndex {
                if let error = batch[next].perform(on: database), HealthRecord.isStorageFault(error) {
                    fault = error
                }
                next += 1
                if !database.isInTransaction {
                    abort = database.error(SQLITE_ABORT, sql: nil)
                    break
                }
            }
            if let abort {
                health.noteFailure(fault ?? abort)
                for request in batch[first..<next] { request.finish(failure: abort) }
                continue
            }
            do {
                try timedCommit()
                if let fault { health.noteFailure(fault) } else { health.noteSuccess() }
                for request in batch[first..<next] { request.finish(failure: nil) }
                for observer in commitObservers.withLock({ $0 }) { observer() }
            } catch {
                health.noteFailure(error)
                if database.isInTransaction { try? database.execute("ROLLBACK") }
                for request in batch[first..<next] { request.finish(failure: error) }
            }
        }
    }
}

/// Reader connections, opened on demand up to `capacity`, each used by one thread at a time.
final class ReaderPool: @unchecked Sendable {
    private let path: String
    private let capacity: Int
    private let condition = ConditionLock()
    private var idle: [Database] = []
    private var openCount = 0
    private var isClosed = false

    init(path: String, capacity: Int) {
        self.path = path
        self.capacity = capacity
    }

    func acquire() throws(StoreError) -> Database {
        condition.lock()
        while true {
            if isClosed {
                condition.unlock()
                throw .closed
            }
            if let database = idle.popLast() {
                condition.unlock()
                return database
            }
            if openCount < capacity {
                openCount += 1
                condition.unlock()
                do {
                    return try Database(path: path, flags: SQLITE_OPEN_READONLY)
                } catch {
                    condition.lock()
                    openCount -= 1
                    condition.broadcast()
                    condition.unlock()
                    throw error
                }
            }
            condition.wait()
        }
    }

    func release(_ database: Database) {
        condition.lock()
        defer { condition.unlock() }
        if isClosed {
            database.close()
            openCount -= 1
        } else {
            idle.append(database)
        }
        condition.broadcast()
    }

    /// Closes idle readers now and waits for busy ones to come back.
    func close() {
        condition.lock()
        defer { condition.unlock() }
        isClosed = true
        for database in idle { database.close() }
        openCount -= idle.count
        idle = []
        while openCount > 0 { condition.wait() }
    }
}
