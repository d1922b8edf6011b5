import Synchronization

/// Whether startup reconciliation has finished and mutations may run.
public final class Readiness: Sendable {
    private let ready = Mutex(false)

    public init() {}

    public var isReady: Bool { ready.withLock { $0 } }

    public func markReady() { ready.withLock { $0 = true } }
}
