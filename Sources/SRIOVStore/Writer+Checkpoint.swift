import CSQLite

/// WAL checkpoints of the writer connection, and the timing of its commits.
///
/// SQLite's own automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages: that commit, and
/// every write queued behind it, waits for the pages to be copied into the database file and for its fsync. The
/// writer's WAL hook replaces it, so the checkpoint is timed apart from the commit.
extension Writer {
    /// Pages in the WAL after which a checkpoint runs (SQLite's default for its automatic checkpoint).
    static let checkpointPages: Int32 = 1000

    /// Replaces SQLite's automatic checkpoint with `walHook`.
    func installWALHook() {
        sqlite3_wal_hook(database.handle, walHook, Unmanaged.passUnretained(self).toOpaque())
    }

    /// COMMIT, timed: the WAL append and its fsync as `commit`, a checkpoint it ran as `checkpoint`.
    func timedCommit() throws(StoreError) {
        let start = PhaseLatencies.now()
        checkpointNanoseconds = 0
        try database.execute("COMMIT")
        let total = PhaseLatencies.now() &- start
        PhaseLatencies.shared.record(.commit, nanoseconds: total &- min(total, checkpointNanoseconds))
    }

    /// Called by SQLite on the writer thread after each commit with the WAL's size in pages.
    fileprivate func walCommitted(database handle: OpaquePointer, schema: UnsafePointer<CChar>, pages: Int32) {
        guard pages >= Self.checkpointPages else { return }
        let start = PhaseLatencies.now()
        sqlite3_wal_checkpoint_v2(handle, schema, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
        checkpointNanoseconds = PhaseLatencies.shared.record(.checkpoint, since: start) &- start
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
