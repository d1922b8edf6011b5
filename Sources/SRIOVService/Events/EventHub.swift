import FoundationEssentials
import Glibc
import Logging
import SRIOVCore
import SRIOVStore
import Synchronization
import Threading

/// Where a subscriber's events go: a streamed HTTP response, in the daemon.
protocol EventSink: AnyObject, Sendable {
    /// Queues bytes for the subscriber; false when it is gone, or when more than its limit is queued already
    /// (too slow to keep up). `force` queues past the limit (the last event before cutting a subscriber off).
    func send(_ bytes: [UInt8], force: Bool) -> Bool
    /// Ends the stream once what is queued is sent.
    func finish()
    /// Calls `body` when room is made after a `send` was refused for it.
    func onDrained(_ body: @escaping @Sendable () -> Void)
    var isClosed: Bool { get }
}

/// Fans the audit log out to `GET /events` subscribers.
///
/// One thread tails the log: told of every commit, it reads the new rows in id order, keeps the latest in a ring,
/// and hands each subscriber what it has not seen and wants. A subscriber that starts behind the ring is caught up
/// from the database first. Every delivery happens on that thread, in id order, once: nothing is lost or sent
/// twice, whatever path wrote the audit row.
///
/// Each subscriber goes at its own pace: when its queue is full the hub stops there and goes on once the client
/// has read (the queue's memory is bounded). A subscriber that was live and falls further behind than the ring
/// holds is too slow to keep up: it is cut off with a last event saying where to resume.
final class EventHub: @unchecked Sendable {
    struct Limits: Sendable {
        var subscribers = 2048
        /// Events kept in memory for subscribers that are live or nearly so.
        var ring = 8192
        var heartbeat: Duration = .seconds(15)
        /// The least time between two rounds of deliveries: commits that come closer are handed out together.
        var batchInterval: Duration = .milliseconds(10)
    }

    enum SubscribeError: Error {
        case tooManySubscribers(Int)
        case unavailable(String)
    }

    private let store: Store
    private let inventory: InventoryCache
    private let logger: Logger
    let limits: Limits
    private let condition = ConditionLock()
    // Guarded by `condition`:
    private var dirty = true
    private var running = false
    private var started = false
    private var subscribers: [Int: Subscriber] = [:]
    private var nextSubscriber = 0
    // Touched only by the tail thread:
    private var ring: [ServerEvent] = []
    private var lastID: Int64 = 0
    private var lastHeartbeat = ContinuousClock.now
    private var lastRound = ContinuousClock.now

    init(store: Store, inventory: InventoryCache, logger: Logger, limits: Limits = Limits()) {
        self.store = store
        self.inventory = inventory
        self.logger = logger
        self.limits = limits
    }

    /// Starts tailing from the newest row now in the log (on the first subscription).
    private func startIfNeeded() throws {
        guard !started else { return }
        lastID = try store.read { try $0.auditIDRange()?.last } ?? 0
        running = true
        started = true
        store.observeCommits { [weak self] in self?.wake() }
        try DetachedThread.spawn(name: "event-hub") { [self] in run() }
    }

    func stop() {
        condition.withLock {
            running = false
            condition.broadcast()
        }
    }

    var subscriberCount: Int { condition.withLock { subscribers.count } }

    /// Adds a subscriber that wants `filter`'s events after `after` (nil: from now on).
    func subscribe(_ filter: EventFilter, after: Int64?, sink: any EventSink) throws(SubscribeError) -> Int {
        // "From now on" is the newest record committed now, read here: the tail thread may not have seen it yet,
        // and whatever commits after this point must reach the subscriber.
        let now: Int64
        do { now = try store.read { try $0.auditIDRange()?.last } ?? 0 } catch { throw .unavailable("\(error)") }
        condition.lock()
        defer { condition.unlock() }
        guard subscribers.count < limits.subscribers else { throw .tooManySubscribers(limits.subscribers) }
        do { try startIfNeeded() } catch { throw .unavailable("\(error)") }
        nextSubscriber += 1
        subscribers[nextSubscriber] = Subscriber(filter: filter, requested: after, now: now, sink: sink)
        sink.onDrained { [weak self] in self?.wake() }
        dirty = true
        condition.broadcast()
        return nextSubscriber
    }

    func wake() {
        condition.lock()
        dirty = true
        condition.broadcast()
        condition.unlock()
    }

    // MARK: - The tail thread

    private func run() {
        while let due = waitForWork() {
            do {
                try readNewRows()
                for subscriber in current() { try deliver(to: subscriber) }
            } catch StoreError.closed {
                break  // the daemon is stopping: its store is closed
            } catch {
                logger.error("the event stream could not read the audit log", metadata: ["error": "\(error)"])
            }
            if due { heartbeat() }
            removeClosed()
        }
        for subscriber in current() { subscriber.sink.finish() }
    }

    /// Blocks until there is work; nil once stopped. True when a heartbeat is due.
    private func waitForWork() -> Bool? {
        condition.lock()
        defer { condition.unlock() }
        while running && !dirty && ContinuousClock.now - lastHeartbeat < limits.heartbeat {
            condition.wait(timeout: limits.heartbeat)
        }
        guard running else { return nil }
        // A round per commit would walk every subscriber hundreds of times a second under load: wait out the
        // batch interval, so what commits meanwhile goes in the same round.
        while running, case let rest = limits.batchInterval - (ContinuousClock.now - lastRound), rest > .zero {
            condition.wait(timeout: rest)
        }
        dirty = false
        lastRound = ContinuousClock.now
        return lastRound - lastHeartbeat >= limits.heartbeat
    }

    private func current() -> [Subscriber] { condition.withLock { Array(subscribers.values) } }

    private func removeClosed() {
        condition.withLock { subscribers = subscribers.filter { !$0.value.sink.isClosed } }
    }

    /// The rows after `lastID`, into the ring.
    private func readNewRows() throws {
        let snapshot = inventory.snapshot
        while true {
            let after = lastID
            let rows = try store.read { try $0.auditEvents(AuditFilter(after: after, limit: AuditFilter.maximumLimit)) }
            guard let last = rows.last else { return }
            ring += rows.map { ServerEvent($0, inventory: snapshot) }
            if ring.count > limits.ring { ring.removeFirst(ring.count - limits.ring) }
            lastID = last.id
        }
    }

    /// Everything after the subscriber's cursor that it wants, until its queue is full: from the database while it
    /// is behind the ring (a resume), then from the ring. A live subscriber left behind the ring is cut off.
    private func deliver(to subscriber: Subscriber) throws {
        guard !subscriber.sink.isClosed else { return }
        if subscriber.cursor == nil { subscriber.cursor = try start(subscriber) }
        guard let cursor = subscriber.cursor, cursor < lastID else {
            subscriber.isLive = true
            return
        }
        let ringStart = ring.first?.id ?? (lastID + 1)
        if cursor < ringStart - 1 {
            if subscriber.isLive { return cutOff(subscriber, resumeAfter: cursor) }
            guard try catchUp(subscriber, before: ringStart) else { return }
        }
        for event in ring[firstIndex(after: subscriber.cursor ?? 0)...] {
            guard send(event, to: subscriber) else { return }
        }
        subscriber.isLive = true
    }

    /// The ring's first event with an id above `id` (ids grow along the ring): a binary search.
    private func firstIndex(after id: Int64) -> Int {
        var (low, high) = (ring.startIndex, ring.endIndex)
        while low < high {
            let middle = (low + high) / 2
            if ring[middle].id > id { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// Rows the ring no longer holds, from the database; false when the subscriber's queue filled up first.
    private func catchUp(_ subscriber: Subscriber, before ringStart: Int64) throws -> Bool {
        let snapshot = inventory.snapshot
        while let after = subscriber.cursor, after < ringStart - 1 {
            // The range and the rows from one snapshot: audit retention may delete the oldest rows meanwhile, and a
            // subscriber whose next events were deleted is told so (a reset), not silently moved past them.
            let (range, rows) = try store.read {
                (try $0.auditIDRange(), try $0.auditEvents(AuditFilter(after: after, limit: AuditFilter.maximumLimit)))
            }
            if let range, after < range.first - 1 {
                // Kept where it is until the reset is queued: the subscriber's queue may be full now.
                guard reset(subscriber, requested: after, range: (range.first, range.last)) else { return false }
                subscriber.cursor = range.last
                return true
            }
            guard !rows.isEmpty else { return true }
            for row in rows where row.id < ringStart {
                guard send(ServerEvent(row, inventory: snapshot), to: subscriber) else { return false }
            }
            if rows.last!.id >= ringStart - 1 { return true }
        }
        return true
    }

    /// The cursor of a new subscriber: its `after` when the log holds it, else the newest id after a `reset`.
    private func start(_ subscriber: Subscriber) throws -> Int64 {
        guard let after = subscriber.requested else { return subscriber.now }
        let range = try store.read { try $0.auditIDRange() }
        let (first, newest) = (range?.first ?? 1, max(range?.last ?? 0, subscriber.now))
        if after >= first - 1 && after <= newest { return after }
        _ = reset(subscriber, requested: after, range: range.map { ($0.first, newest) } ?? (nil, newest))
        return newest
    }

    /// Tells the subscriber the log does not hold the events after `requested` (never written, or removed by audit
    /// retention: see the archive), and that it goes on from the newest id; false when its queue had no room.
    private func reset(_ subscriber: Subscriber, requested: Int64, range: (first: Int64?, last: Int64)) -> Bool {
        let data = JSONValue.object([
            "requested_after": .int(Int(requested)), "oldest": range.first.map { .int(Int($0)) } ?? .null,
            "newest": .int(Int(range.last)),
            "detail": .string("the log does not hold the events after this id: list again, then resume from newest"),
        ])
        return subscriber.sink.send(ServerEvent.frame(id: range.last, type: "reset", data: data.text), force: false)
    }

    /// Hands one event over if the subscriber wants it; false when its queue is full or it is gone (the cursor then
    /// stays before the event).
    private func send(_ event: ServerEvent, to subscriber: Subscriber) -> Bool {
        if subscriber.filter.matches(event), !subscriber.sink.send(event.frame, force: false) { return false }
        subscriber.cursor = event.id
        return true
    }

    /// A subscriber too slow to keep up: a last event saying where to resume, then the end of its stream.
    private func cutOff(_ subscriber: Subscriber, resumeAfter: Int64) {
        let data = JSONValue.object([
            "resume_after": .int(Int(resumeAfter)),
            "detail": .string("too slow to keep up; reconnect with Last-Event-ID \(resumeAfter)"),
        ])
        _ = subscriber.sink.send(ServerEvent.frame(id: nil, type: "cutoff", data: data.text), force: true)
        subscriber.sink.finish()
        logger.warning("an event subscriber was cut off", metadata: ["resume_after": "\(resumeAfter)"])
    }

    private func heartbeat() {
        lastHeartbeat = ContinuousClock.now
        for subscriber in current() { _ = subscriber.sink.send(Array(": heartbeat\n\n".utf8), force: false) }
    }
}

/// A subscriber, touched only by the tail thread once added.
private final class Subscriber: @unchecked Sendable {
    let filter: EventFilter
    /// The `after` it asked for; nil for "from now on".
    let requested: Int64?
    /// The newest record committed when it subscribed: where "from now on" starts.
    let now: Int64
    /// The last id it was handed (or passed over); nil until the tail thread has placed it.
    var cursor: Int64?
    /// It has been at the head of the log once: from then on, falling behind the ring means too slow.
    var isLive = false
    let sink: any EventSink

    init(filter: EventFilter, requested: Int64?, now: Int64, sink: any EventSink) {
        self.filter = filter
        self.requested = requested
        self.now = now
        self.cursor = nil
        self.sink = sink
    }
}
