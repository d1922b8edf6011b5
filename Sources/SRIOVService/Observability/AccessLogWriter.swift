import Glibc
import HTTPServer
import Threading

/// The access log: one logfmt line per answered request, written in batches by a thread of its own.
///
/// The event loop only formats: `record` appends the line's bytes to a buffer under a lock (no `String` per
/// field, no system call). A flusher thread takes the whole buffer at once, at most `flushInterval` after its
/// first line or as soon as `flushThreshold` bytes are waiting, and writes it with as few `write` calls as the
/// descriptor takes. When the descriptor stalls (a full pipe nobody reads), lines beyond `capacity` waiting bytes
/// are dropped, never waited for: the loop keeps serving, and the next batch ends with a warning line that says
/// how many were lost. A line reads as `LogfmtLogHandler` would write it:
///
///     ts=2026-11-25T09:52:14.643Z level=info logger=sriovd msg=request actor=ci-bot duration_ms=0.042 \
///     http.method=GET http.path=/pfs http.route=/pfs http.status=200 peer=127.0.0.1:40312 request_id=…
///
/// Access lines may reach the log up to `flushInterval` after other lines logged later.
public final class AccessLogWriter: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Longest a line waits before its batch is written.
        public var flushInterval: Duration = .milliseconds(50)
        /// Waiting bytes that start a write before `flushInterval` is up.
        public var flushThreshold = 64 * 1024
        /// Waiting bytes beyond which new lines are dropped.
        public var capacity = 1024 * 1024

        public init() {}
    }

    private let fd: Int32
    private let configuration: Configuration
    /// ` logger=LABEL`.
    private let loggerField: [UInt8]
    private let lock = ConditionLock()
    // Guarded by `lock`:
    private var pending: [UInt8] = []
    private var droppedLines = 0
    private var clock = LogTimestampCache()
    private var isClosing = false
    private var hasFinished = false
    // The flusher thread's alone:
    private var outgoing: [UInt8] = []

    /// Starts the flusher thread; lines go to `fd` (standard error by default), which stays open.
    public static func start(
        fd: Int32 = 2, label: String = "sriovd", configuration: Configuration = Configuration()
    ) throws(DetachedThread.SpawnError) -> AccessLogWriter {
        let writer = AccessLogWriter(fd: fd, label: label, configuration: configuration)
        try DetachedThread.spawn(name: "access-log") { writer.runFlusher() }
        return writer
    }

    private init(fd: Int32, label: String, configuration: Configuration) {
        self.fd = fd
        self.configuration = configuration
        var field: [UInt8] = []
        LogfmtBytes.appendField("logger", label, to: &field)
        loggerField = field
    }

    /// Appends the line for one answered request; called on the event loop thread. Lines recorded after
    /// `close()` are not written.
    public func record(_ request: HTTPRequest, _ response: HTTPResponse, _ context: RequestContext, _ elapsed: Duration)
    {
        let route = context.annotations.route
        let actor = context.annotations.actor
        lock.withLock {
            guard !isClosing else { return }
            guard pending.count < configuration.capacity else {
                droppedLines += 1
                return
            }
            let wasEmpty = pending.isEmpty
            appendLine(request, response, context, elapsed, route: route, actor: actor)
            if wasEmpty || pending.count >= configuration.flushThreshold { lock.broadcast() }
        }
    }

    /// Writes what is waiting, stops the flusher thread and returns once it has, or once `timeout` has passed
    /// while the log does not take the lines (a stalled pipe must not keep the daemon from stopping). Call once the
    /// server has stopped.
    public func close(timeout: Duration = .seconds(5)) {
        let deadline = ContinuousClock.now + timeout
        lock.withLock {
            isClosing = true
            lock.broadcast()
            while !hasFinished && ContinuousClock.now < deadline { lock.wait(timeout: deadline - .now) }
        }
    }

    /// The line, fields in the order `LogfmtLogHandler` sorts them. Called with `lock` held.
    private func appendLine(
        _ request: HTTPRequest, _ response: HTTPResponse, _ context: RequestContext, _ elapsed: Duration,
        route: String?, actor: String?
    ) {
        pending.append(contentsOf: "ts=".utf8)
        clock.appendNow(to: &pending)
        pending.append(contentsOf: " level=info".utf8)
        pending.append(contentsOf: loggerField)
        pending.append(contentsOf: " msg=request".utf8)
        if let actor { LogfmtBytes.appendField("actor", actor, to: &pending) }
        LogfmtBytes.appendKey("duration_ms", to: &pending)
        LogfmtBytes.appendMilliseconds(elapsed, to: &pending)
        LogfmtBytes.appendField("http.method", request.method.rawValue, to: &pending)
        LogfmtBytes.appendField("http.path", request.path, to: &pending)
        LogfmtBytes.appendField("http.route", route ?? "-", to: &pending)
        LogfmtBytes.appendField("http.status", decimal: response.status.code, to: &pending)
        LogfmtBytes.appendField("peer", context.remoteAddress, to: &pending)
        LogfmtBytes.appendField("request_id", context.requestID, to: &pending)
        pending.append(UInt8(ascii: "\n"))
    }

    /// The flusher thread: waits for a batch, takes it, writes it, until closed and drained.
    private func runFlusher() {
        while let dropped = nextBatch() {
            if dropped > 0 { appendDropNotice(dropped) }
            LogfmtLogHandler.writeLock.withLock { _ in Console.write(outgoing, to: fd) }
            outgoing.removeAll(keepingCapacity: true)
        }
    }

    /// Waits until lines are waiting and the batch is due, then moves them to `outgoing` and returns how many
    /// lines were dropped meanwhile; nil once closed with nothing left to write.
    private func nextBatch() -> Int? {
        lock.withLock {
            while pending.isEmpty && droppedLines == 0 && !isClosing { lock.wait() }
            if !isClosing && pending.count < configuration.flushThreshold {
                lock.wait(timeout: configuration.flushInterval)
            }
            if pending.isEmpty && droppedLines == 0 && isClosing {
                hasFinished = true
                lock.broadcast()
                return nil
            }
            swap(&pending, &outgoing)
            defer { droppedLines = 0 }
            return droppedLines
        }
    }

    /// A warning line that says how many lines were dropped; the flusher's own, written after its batch.
    private func appendDropNotice(_ dropped: Int) {
        outgoing.append(contentsOf: "ts=".utf8)
        lock.withLock { clock.appendNow(to: &outgoing) }
        outgoing.append(contentsOf: " level=warning".utf8)
        outgoing.append(contentsOf: loggerField)
        outgoing.append(contentsOf: #" msg="access log lines dropped: the log did not keep up""#.utf8)
        LogfmtBytes.appendField("access_log.dropped", decimal: dropped, to: &outgoing)
        outgoing.append(UInt8(ascii: "\n"))
    }
}
