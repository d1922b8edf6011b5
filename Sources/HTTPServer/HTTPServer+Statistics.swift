import Logging
import Synchronization

/// What the server's client limits have done, for a metrics endpoint to expose.
public struct HTTPServerStatistics: Sendable, Equatable {
    /// Connections open right now.
    public var openConnections: Int
    /// Body bytes of requests in progress, as admitted against `ClientLimits.bodyMemory`.
    public var bufferedBodyBytes: Int
    /// Connections and requests refused (or timed out) for each limit since the server started.
    public var refusals: [LimitKind: Int]

    public init(openConnections: Int = 0, bufferedBodyBytes: Int = 0, refusals: [LimitKind: Int] = [:]) {
        self.openConnections = openConnections
        self.bufferedBodyBytes = bufferedBodyBytes
        self.refusals = refusals
    }
}

/// Counts refusals per limit and logs a warning when a limit is hit: at most one per limit per `interval`,
/// saying how many more were refused since the last one, so a flood cannot flood the log too.
final class LimitWarnings: Sendable {
    private struct State {
        var counts: [LimitKind: Int] = [:]
        var lastWarning: [LimitKind: UInt64] = [:]
        var unreported: [LimitKind: Int] = [:]
    }
    private let state = Mutex(State())
    private let interval: UInt64
    private let logger: Logger

    init(logger: Logger, interval: Duration = .seconds(10)) {
        self.logger = logger
        self.interval = Monotonic.nanoseconds(interval)
    }

    var counts: [LimitKind: Int] { state.withLock { $0.counts } }

    /// Counts one refusal of `peer` for `refusal`, and logs it unless a warning for the same limit was logged
    /// less than `interval` ago.
    func record(_ refusal: LimitRefusal, peer: String, now: UInt64) {
        let kind = refusal.kind
        let unreported = state.withLock { state -> Int? in
            state.counts[kind, default: 0] += 1
            if let last = state.lastWarning[kind], now < last + interval {
                state.unreported[kind, default: 0] += 1
                return nil
            }
            state.lastWarning[kind] = now
            defer { state.unreported[kind] = 0 }
            return state.unreported[kind] ?? 0
        }
        guard let unreported else { return }
        logger.warning(
            "client limit reached",
            metadata: [
                "http.limit": "\(kind.rawValue)", "http.status": "\(refusal.status.code)", "http.peer": "\(peer)",
                "http.refused_since_last_warning": "\(unreported)",
            ])
    }
}
