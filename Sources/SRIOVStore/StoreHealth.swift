import CSQLite
import SRIOVCore
import Synchronization

/// Whether the store can commit, as its writer last found out.
public enum StoreHealth: Hashable, Sendable {
    /// The last transaction committed (or nothing has been written since the store opened).
    case healthy
    /// Writes fail: the last error, and when the first failure of this run of failures happened.
    case failing(StoreError, since: String)
}

/// The writer's notes on whether it can commit. Written by the writer thread, read by anyone.
final class HealthRecord: Sendable {
    private let state = Mutex(StoreHealth.healthy)

    var current: StoreHealth { state.withLock { $0 } }

    func noteFailure(_ error: StoreError) {
        state.withLock { health in
            switch health {
            case .healthy: health = .failing(error, since: Timestamp.now())
            case .failing(_, let since): health = .failing(error, since: since)
            }
        }
    }

    func noteSuccess() {
        state.withLock { $0 = .healthy }
    }

    /// SQLite errors that say the database cannot take writes now (a lock held elsewhere, a full or read-only
    /// file system, an I/O error, damage), as opposed to a statement this write got wrong (a constraint).
    static func isStorageFault(_ error: StoreError) -> Bool {
        guard case .sqlite(let code, _, _) = error else { return false }
        let faults: Set<Int32> = [
            SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL,
            SQLITE_CANTOPEN, SQLITE_PROTOCOL, SQLITE_NOTADB,
        ]
        return faults.contains(code & 0xff)
    }
}

extension Store {
    /// What the writer last found out: `.failing` from a transaction that could not commit until one commits.
    public var health: StoreHealth { writer.health.current }

    /// Finds out now whether the store can commit: upserts the one row of `store_probe` in a durable
    /// transaction (through the writer, like any write) and returns the health that leaves. For readiness
    /// checks while the store is failing, when no other write may come to show it has recovered; callers
    /// limit how often they probe.
    @discardableResult
    public func probe() async -> StoreHealth {
        let now = Timestamp.now()
        do {
            try await write { try $0.touchProbe(at: now) }
        } catch StoreError.closed {
            return .failing(.closed, since: now)
        } catch {
            // The writer noted the failure in `health`.
        }
        return health
    }
}

extension Transaction {
    /// Records the time of a store probe (the table's only row).
    func touchProbe(at time: String) throws(StoreError) {
        try connection().execute(
            """
            INSERT INTO store_probe (id, probed_at) VALUES (1, ?)
            ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at
            """, time)
    }
}
