import CSQLite
import Threading

/// Checkpoints the WAL on a thread and a connection of its own, so that no commit waits for one.
///
/// The writer's WAL hook asks for a checkpoint once the WAL holds `Writer.checkpointPages` pages; this thread then
/// runs a PASSIVE checkpoint, which takes no lock the writer needs: commits go on appending to the WAL while pages
/// are copied into the database file and it is fsynced. Should the WAL still grow past `limitPages` (readers holding
/// old snapshots, a disk slower than the writes), the checkpoint becomes RESTART, which waits for the writer between
/// two transactions and starts the WAL over: the WAL stays bounded.
final class Checkpointer: @unchecked Sendable {
    /// Beyond this many pages in the WAL (64 MiB of 4 KiB pages), checkpoints restart the WAL.
    static let limitPages: Int32 = 16_384

    private let database: Database
    private let condition = ConditionLock()
    private var requestedPages: Int32 = 0
    private var isClosing = false
    private var isFinished = false

    /// Opens its connection to `path` (a WAL database the writer has configured) and starts its thread.
    init(path: String, busyTimeoutMilliseconds: Int32) throws(StoreError) {
        database = try Database(
            path: path, flags: SQLITE_OPEN_READWRITE, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        try database.executeScript("PRAGMA synchronous = FULL")
        // Its own commits never happen; its close must not checkpoint or delete the WAL the writer is using.
        sqlite3_wal_autocheckpoint(database.handle, 0)
        do {
            try DetachedThread.spawn(name: "store-checkpoint") { [self] in run() }
        } catch {
            fatalError("sriovd: cannot start the store's checkpoint thread: \(error)")
        }
    }

    /// Asks for a checkpoint of a WAL of `pages` pages. Cheap: called by the writer after a commit.
    func request(pages: Int32) {
        condition.lock()
        requestedPages = max(requestedPages, pages)
        condition.broadcast()
        condition.unlock()
    }

    /// Lets a running checkpoint finish, stops the thread and closes the connection.
    func close() {
        condition.lock()
        isClosing = true
        condition.broadcast()
        while !isFinished { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while requestedPages == 0 && !isClosing { condition.wait() }
            let pages = requestedPages
            requestedPages = 0
            let closing = isClosing
            condition.unlock()
            if closing { break }
            let mode = pages >= Self.limitPages ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE
            let start = PhaseLatencies.now()
            // A failure (SQLITE_BUSY from another process's checkpoint, an I/O error the writer will meet and
            // report too) leaves the WAL as it is; the next commit asks again.
            sqlite3_wal_checkpoint_v2(database.handle, "main", mode, nil, nil)
            PhaseLatencies.shared.record(.checkpoint, since: start)
        }
        database.close()
        condition.lock()
        isFinished = true
        condition.broadcast()
        condition.unlock()
    }
}
