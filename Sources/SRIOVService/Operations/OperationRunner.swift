import FoundationEssentials
import SRIOVCore
import SRIOVStore
import Synchronization

/// Carries out requests made with `Prefer: respond-async` as operations: recorded `queued` before the answer,
/// `running` once started, and `succeeded` or `failed` with the answer the synchronous call would have given. Every
/// transition is an audit event (`operation.queued`, ...), and so an event of the stream.
final class OperationRunner: Sendable {
    /// What an operation ends with: the status and body the synchronous call would have answered.
    struct Outcome: Sendable {
        var status: Int
        /// JSON, or nil for an empty body.
        var body: [UInt8]?

        var succeeded: Bool { status < 400 }
    }

    let core: ServiceCore
    private let waiters = Mutex<[String: [Waiter]]>([:])

    init(core: ServiceCore) {
        self.core = core
    }

    /// Records a new operation and starts `work` on its own task; the record as first stored.
    func start(
        kind: String, target: String, request: JSONValue, caller: Caller, id: String = UUID().uuidString.lowercased(),
        idempotency: (key: String, requestHash: String)?, replay: @escaping @Sendable (OperationRecord) -> [UInt8],
        work: @escaping @Sendable () async -> Outcome
    ) async throws(SRIOVError) -> (record: OperationRecord, replayed: Bool) {
        let record = OperationRecord(
            id: id, kind: kind, target: target, request: request.text, actor: caller.actor,
            requestID: caller.requestID, createdAt: Timestamp.now())
        let stored: Result<(OperationRecord, Bool), SRIOVError> = try await core.perform { tx in
            if let idempotency, let previous = try Self.previous(idempotency, tx: tx) { return previous }
            try tx.insertOperation(record)
            try tx.appendAudit(Self.event(record, caller: caller))
            if let idempotency {
                try tx.putIdempotencyRecord(
                    IdempotencyRecord(
                        key: Self.namespaced(idempotency.key), requestHash: idempotency.requestHash, status: 202,
                        body: replay(record), location: "/operations/" + id, createdAt: Timestamp.now()))
            }
            return .success((record, false))
        }
        let (first, replayed) = try stored.get()
        if !replayed { Task.detached { await self.run(first, caller: caller, work: work) } }
        return (first, replayed)
    }

    /// The operation an earlier request with the same key started; a different request under the key is refused.
    private static func previous(_ idempotency: (key: String, requestHash: String), tx: Transaction) throws
        -> Result<(OperationRecord, Bool), SRIOVError>?
    {
        guard let kept = try tx.idempotencyRecord(key: namespaced(idempotency.key)) else { return nil }
        guard kept.requestHash == idempotency.requestHash else {
            return .failure(.idempotencyKeyReused(idempotency.key))
        }
        let id = String((kept.location ?? "").dropFirst("/operations/".count))
        guard let operation = try tx.operation(id: id) else { return nil }
        return .success((operation, true))
    }

    /// Keys of asynchronous requests are kept apart from those of the synchronous ones they run.
    private static func namespaced(_ key: String) -> String { "async:" + key }

    /// Runs the work and records each transition; wakes those waiting for the end.
    private func run(_ queued: OperationRecord, caller: Caller, work: @Sendable () async -> Outcome) async {
        var record = queued
        record.state = .running
        record.startedAt = Timestamp.now()
        await save(record, caller: caller)
        let outcome = await work()
        record.state = outcome.succeeded ? .succeeded : .failed
        record.finishedAt = Timestamp.now()
        let document = outcome.body.map { String(decoding: $0, as: UTF8.self) }
        if outcome.succeeded {
            record.result = document
        } else {
            record.problem = document ?? "{}"
        }
        if outcome.succeeded, record.kind == "allocation.create", let id = document.flatMap(Self.allocationID) {
            record.target = id
        }
        await save(record, caller: caller)
        wake(record.id)
    }

    private static func allocationID(_ body: String) -> String? {
        (try? JSONValue.parse(body))?["id"]?.string
    }

    /// Stores a transition with its audit event; a refused write is logged (the next start settles it).
    func save(_ record: OperationRecord, caller: Caller) async {
        do {
            _ = try await core.perform { tx in
                try tx.updateOperation(record)
                try tx.appendAudit(Self.event(record, caller: caller))
            }
        } catch {
            core.logger.error(
                "could not record an operation's state",
                metadata: ["operation": "\(record.id)", "state": "\(record.state.rawValue)", "error": "\(error)"])
        }
    }

    static func event(_ record: OperationRecord, caller: Caller) -> AuditEvent {
        caller.event(
            "operation." + record.state.rawValue, target: record.id,
            outcome: record.state == .failed ? .failure : .success,
            details: ["kind": .string(record.kind), "operation_target": .string(record.target)])
    }

    // MARK: - Waiting for the end

    /// The operation once finished, or as it stands after `timeout`; nil when there is none with this id.
    func wait(for id: String, timeout: Duration) async throws(SRIOVError) -> OperationRecord? {
        let waiter = Waiter()
        waiters.withLock { $0[id, default: []].append(waiter) }
        defer { waiters.withLock { $0[id]?.removeAll { $0 === waiter } } }
        guard let current = try read(id), !current.state.isFinished, timeout > .zero else { return try read(id) }
        Task {
            try? await Task.sleep(for: timeout)
            waiter.signal()
        }
        await waiter.wait()
        return try read(id)
    }

    private func read(_ id: String) throws(SRIOVError) -> OperationRecord? {
        do { return try core.store.read { try $0.operation(id: id) } } catch { throw .storage("\(error)") }
    }

    private func wake(_ id: String) {
        for waiter in waiters.withLock({ $0[id] ?? [] }) { waiter.signal() }
    }
}

/// One long poll: resumed once, by the operation's end or by its timeout, whichever comes first.
private final class Waiter: Sendable {
    private let state = Mutex<(signalled: Bool, continuation: CheckedContinuation<Void, Never>?)>((false, nil))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.signalled { return true }
                state.continuation = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    func signal() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.signalled = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume()
    }
}
