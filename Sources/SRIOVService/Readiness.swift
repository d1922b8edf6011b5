import HTTPServer
import SRIOVStore
import Synchronization

/// Whether startup reconciliation has finished and mutations may run, and whether the store can commit.
///
/// `GET /readyz` (see `answer()`) is 503 until startup reconciliation has finished, and again while the store's
/// writer cannot commit (a lock held by another process, a full disk). A store that is failing gets no write
/// from a client that only polls `/readyz`, so while it fails `/readyz` probes it with a tiny durable write, at
/// most once per `probeInterval`, and turns 200 again once one commits.
public final class Readiness: Sendable {
    private struct ProbeState {
        var isProbing = false
        var lastStart: ContinuousClock.Instant?
    }

    private let ready = Mutex(false)
    private let store: Store?
    private let probeInterval: Duration
    private let probes = Mutex(ProbeState())

    /// Without a store, only startup counts.
    public init(store: Store? = nil, probeInterval: Duration = .seconds(1)) {
        self.store = store
        self.probeInterval = probeInterval
    }

    /// Startup reconciliation has finished (mutations may run).
    public var isReady: Bool { ready.withLock { $0 } }

    public func markReady() { ready.withLock { $0 = true } }

    /// The store's health: as its writer last found it, or, when that was a failure and no probe has started
    /// within `probeInterval` (nor is running), after probing it now.
    public func storeHealth() async -> StoreHealth {
        guard let store else { return .healthy }
        let health = store.health
        guard case .failing = health, claimProbe() else { return health }
        defer { probes.withLock { $0.isProbing = false } }
        return await store.probe()
    }

    /// What `GET /readyz` answers: 200 `{"status":"ready"}`; 503 `{"status":"starting"}` before startup
    /// reconciliation has finished; 503 problem+json (`urn:sriovd:problem:storage-unavailable`) naming the
    /// storage error while the store cannot commit. Inline on the event loop while the store is healthy.
    public func answer() -> HTTPHandlerResult {
        guard isReady else { return .response(JSONBody.ok(["status": "starting"], status: .serviceUnavailable)) }
        guard let store, case .failing = store.health else { return .response(JSONBody.ok(["status": "ready"])) }
        return .deferred { [self] in
            switch await storeHealth() {
            case .healthy: return JSONBody.ok(["status": "ready"])
            case .failing(let error, let since): return Self.storageUnavailable(error, since: since)
            }
        }
    }

    /// True when a probe may start now (and marks it started).
    private func claimProbe() -> Bool {
        let now = ContinuousClock.now
        return probes.withLock { state in
            if state.isProbing { return false }
            if let last = state.lastStart, now - last < probeInterval { return false }
            state.isProbing = true
            state.lastStart = now
            return true
        }
    }

    private static func storageUnavailable(_ error: StoreError, since: String) -> HTTPResponse {
        let problem = ProblemDetails(
            type: "urn:sriovd:problem:storage-unavailable", title: "Storage unavailable",
            status: HTTPStatus.serviceUnavailable.code,
            detail: "The database cannot commit (since \(since)): \(error). Changes fail until it can again.",
            instance: "/readyz",
            extensions: ["storage_error": .string(error.description), "failing_since": .string(since)])
        return HTTPResponse.problem(problem)
    }
}
