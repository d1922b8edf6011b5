import Synchronization

/// The body of a response that goes on for as long as the server has something to say (Server-Sent Events).
///
/// Any thread may `send`; the connection takes what is queued on its event loop and writes it. The queue is bounded:
/// while the client reads more slowly than the sender sends, `send` refuses, and the sender decides what to do (cut
/// the client off). The response carries no `Content-Length`, and its end is the end of the connection.
public final class ResponseStream: Sendable {
    private struct State {
        var queued: [UInt8] = []
        var isFinished = false
        var isClosed = false
        /// Set once the connection has attached; called (once per batch) when bytes are queued.
        var wake: (@Sendable () -> Void)?
        var wakePending = false
        var onClose: [@Sendable () -> Void] = []
        /// A `send` was refused for room: tell `onDrained` once the connection has taken what was queued.
        var wantsRoom = false
        var onDrained: (@Sendable () -> Void)?
    }

    /// The most bytes queued and not yet taken by the connection.
    public let limit: Int
    private let state = Mutex(State())

    public init(limit: Int = 256 * 1024) {
        self.limit = limit
    }

    /// Queues `bytes`; false when the stream has ended or the client is gone, or, unless `force`, when more than
    /// `limit` bytes would be queued.
    public func send(_ bytes: [UInt8], force: Bool = false) -> Bool {
        let wake = state.withLock { state -> (@Sendable () -> Void)?? in
            guard !state.isFinished, !state.isClosed else { return nil }
            guard force || state.queued.count + bytes.count <= limit else {
                state.wantsRoom = true
                return nil
            }
            state.queued += bytes
            return takeWake(&state)
        }
        guard let wake else { return false }
        wake?()
        return true
    }

    /// Ends the response once what is queued is written.
    public func finish() {
        let wake = state.withLock { state -> (@Sendable () -> Void)? in
            state.isFinished = true
            return takeWake(&state)
        }
        wake?()
    }

    /// Calls `body` each time the connection has taken the queue after a `send` was refused for room: the sender
    /// may go on.
    public func onDrained(_ body: @escaping @Sendable () -> Void) {
        state.withLock { $0.onDrained = body }
    }

    /// True once the client has gone (or the connection closed).
    public var isClosed: Bool { state.withLock { $0.isClosed } }

    /// Calls `body` once the connection closes (at once if it has).
    public func onClose(_ body: @escaping @Sendable () -> Void) {
        let closed = state.withLock { state -> Bool in
            if !state.isClosed { state.onClose.append(body) }
            return state.isClosed
        }
        if closed { body() }
    }

    private func takeWake(_ state: inout State) -> (@Sendable () -> Void)? {
        guard let wake = state.wake, !state.wakePending else { return nil }
        state.wakePending = true
        return wake
    }

    // MARK: - The connection's side

    func attach(wake: @escaping @Sendable () -> Void) {
        let pending = state.withLock { state -> Bool in
            state.wake = wake
            return !state.queued.isEmpty || state.isFinished
        }
        if pending { wake() }
    }

    /// What is queued, and whether the stream has ended.
    func take() -> (bytes: [UInt8], finished: Bool) {
        let (bytes, finished, drained) = state.withLock { state in
            state.wakePending = false
            defer {
                state.queued = []
                state.wantsRoom = false
            }
            return (state.queued, state.isFinished, state.wantsRoom ? state.onDrained : nil)
        }
        drained?()
        return (bytes, finished)
    }

    func markClosed() {
        let callbacks = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.isClosed else { return [] }
            state.isClosed = true
            state.wake = nil
            defer { state.onClose = [] }
            return state.onClose
        }
        for callback in callbacks { callback() }
    }
}
