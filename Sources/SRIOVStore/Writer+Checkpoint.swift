import CSQLite

/// WAL checkpoints of the writer connection, and the timing of its commits.
///
/// SQLite's own automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages: that commit, and
/// every write queued behind it, waits for the pages to be copied into the database file and for its fsync
/// (measured: one commit in twelve at 64 clients, 20-30 ms each). The writer's WAL hook replaces it and hands the
/// checkpoint to the `Checkpointer`'s thread instead.
extension Writer {
    /// Pages in the WAL after which a checkpoint runs (SQLite's default for its automatic checkpoint).
    static let checkpointPages: Int32 = 1000

    /// Replaces SQLite's automatic checkpoint with `walHook`.
    func installWALHook() {
        sqlite3_wal_hook(database.handle, walHook, Unmanaged.passUnretained(self).toOpaque())
    }

    /// COMMIT, timed: the WAL append and its fsync.
    func timedCommit() throws(StoreError) {
        let start = PhaseLatencies.now()
        try database.execute("COMMIT")
        PhaseLatencies.shared.record(.commit, since: start)
    }

    /// Called by SQLite on the writer thread after each commit with the WAL's size in pages. Without a
    /// checkpointer (before migrations are done) SQLite's own checkpoint runs, as it would have.
    fileprivate func walCommitted(database handle: OpaquePointer, schema: UnsafePointer<CChar>, pages: Int32) {
        guard pages >= Self.checkpointPages else { return }
        if let checkpointer {
            checkpointer.request(pages: pages)
        } else {
            sqlite3_wal_checkpoint_v2(handle, schema, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
        }
    }
}

/// The writer connection's WAL hook: `context` is its `Writer`, which outlives the connection.
private func walHook(
    context: UnsafeMutableRawPointer?, handle: OpaquePointer?, schema: UnsafePointer<CChar>?, pages: Int32
) -> Int32 {
    guard let context, let handle, let schema else { return SQLITE_OK }
    Unmanaged<Writer>.fromOpaque(context).takeUnretainedValue()
        .walCommitted(database: handle, schema: schema, pages: pages)
    return SQLITE_OK
}
