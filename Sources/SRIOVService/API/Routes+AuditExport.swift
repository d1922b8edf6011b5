import HTTPServer
import SRIOVCore
import SRIOVStore
import Synchronization

/// `GET /audit?format=ndjson`: the whole range the filters select, one event a line, for a SIEM.
extension SRIOVAPI {
    func exportAudit(_ request: HTTPRequest) -> HTTPHandlerResult {
        let filter: AuditFilter
        let cap: Int?
        do {
            filter = try auditFilter(request)
            // Without `limit` the whole range streams; with it, at most that many events (the first, in id order).
            cap = request.queryValue("limit") == nil ? nil : try limit(request)
        } catch {
            return .response(error.response(instance: request.path))
        }
        let stream = ResponseStream(limit: AuditExport.queueLimit)
        AuditExport(store: core.store, filter: filter, cap: cap, stream: stream).start()
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/x-ndjson")
        headers.add("Cache-Control", "no-store")
        return .stream(HTTPResponse(status: .ok, headers: headers, body: []), stream)
    }
}

/// Reads the audit log a page at a time and queues it on the response as the client takes it: memory stays bounded
/// by the stream's queue and one page, whatever the range. Events are lines as the archive writes them.
final class AuditExport: Sendable {
    /// The most bytes queued for the client; the reader waits beyond it.
    static let queueLimit = 1 << 20
    /// Lines are handed over in pieces of about this size.
    static let piece = 64 * 1024

    private let store: Store
    private let filter: AuditFilter
    /// The most events to send; nil: the whole range.
    private let cap: Int?
    private let stream: ResponseStream
    /// Room was made (or the client left) since the last refused send; the reader waiting for it.
    private let room = Mutex<(signalled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    init(store: Store, filter: AuditFilter, cap: Int? = nil, stream: ResponseStream) {
        self.store = store
        self.filter = filter
        self.cap = cap
        self.stream = stream
        stream.onDrained { [weak self] in self?.signal() }
        stream.onClose { [weak self] in self?.signal() }
    }

    func start() {
        Task.detached { await self.run() }
    }

    private func run() async {
        var filter = self.filter
        filter.limit = AuditFilter.maximumLimit
        var pending: [UInt8] = []
        var left = cap ?? Int.max
        while !stream.isClosed && left > 0 {
            let page: [AuditEvent]
            do {
                page = try store.read { try $0.auditEvents(filter) }
            } catch {
                break  // the store closed (the daemon stops) or failed: the response ends early
            }
            for event in page.prefix(left) {
                left -= 1
                pending += AuditArchive.line(event)
                if pending.count >= Self.piece {
                    guard await send(pending) else { return }
                    pending = []
                }
            }
            guard page.count == filter.limit, let last = page.last else { break }
            filter.after = last.id
        }
        if !pending.isEmpty { _ = await send(pending) }
        stream.finish()
    }

    /// Queues `bytes`, waiting while the queue is full; false once the client is gone.
    private func send(_ bytes: [UInt8]) async -> Bool {
        while true {
            room.withLock { $0.signalled = false }
            if stream.send(bytes, force: bytes.count > Self.queueLimit) { return true }
            if stream.isClosed { return false }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = room.withLock { state -> Bool in
                    if state.signalled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    private func signal() {
        let waiter = room.withLock { state -> CheckedContinuation<Void, Never>? in
            state.signalled = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
