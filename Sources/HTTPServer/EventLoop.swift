import CLinux
import Glibc
import Logging

/// State shared by all loops of one server. Immutable apart from the admission ledger and the refusal counts.
final class ServerContext: Sendable {
    let configuration: HTTPServerConfiguration
    let handler: any HTTPHandler
    let logger: Logger
    let accessLog: (@Sendable (HTTPRequest, HTTPResponse, RequestContext, Duration) -> Void)?
    let idPrefix: String
    let headerTimeout: UInt64
    let idleTimeout: UInt64
    let busyPoll: UInt64
    /// Connections, requests in flight and body bytes, per peer and in total, across all loops.
    let admission: Locked<AdmissionLedger>
    /// Refusals per limit, and their rate-limited warnings.
    let warnings: LimitWarnings

    init(
        configuration: HTTPServerConfiguration,
        handler: any HTTPHandler,
        logger: Logger,
        accessLog: (@Sendable (HTTPRequest, HTTPResponse, RequestContext, Duration) -> Void)?
    ) {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
        self.accessLog = accessLog
        idPrefix = String(UInt32.random(in: 0x1000_0000...UInt32.max), radix: 36) + "-"
        headerTimeout = Monotonic.nanoseconds(configuration.headerTimeout)
        idleTimeout = Monotonic.nanoseconds(configuration.idleTimeout)
        busyPoll = Monotonic.nanoseconds(configuration.busyPoll)
        admission = Locked(
            AdmissionLedger(limits: configuration.clientLimits, maxConnections: configuration.maxConnections))
        warnings = LimitWarnings(logger: logger)
    }

    var statistics: HTTPServerStatistics {
        let (open, body) = admission.withLock { ($0.total, $0.bodyBytes) }
        return HTTPServerStatistics(openConnections: open, bufferedBodyBytes: body, refusals: warnings.counts)
    }
}

enum Monotonic {
    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

/// One thread running epoll. It owns the connections it accepted (or adopted); nothing else touches them.
/// Other threads reach it only through `execute(_:)`, which queues a job and wakes the loop with its eventfd.
final class EventLoop: @unchecked Sendable {
    let index: Int
    let server: ServerContext
    private let epollFD: Int32
    private let wakeFD: Int32
    /// The listening sockets this loop accepts on (TCP and/or Unix), shared with the other loops.
    private var listeners: [Listener] = []
    private var isAccepting = false
    private var acceptPausedUntil: UInt64 = 0

    private struct Jobs {
        var queue: [@Sendable () -> Void] = []
        var isWakePending = false
        var isClosed = false
    }
    private let jobs = Locked(Jobs())
    /// Set when the thread has left `run()`.
    let hasExited = Locked(false)

    /// Connections by file descriptor.
    private var connections: [Connection?] = []
    private(set) var connectionCount = 0
    private var isRunning = true
    private(set) var isDraining = false
    var encoder: ResponseEncoder
    /// The read buffer every connection of this loop reads into.
    let readBuffer: UnsafeMutableRawBufferPointer
    /// "now" as of the latest epoll wake-up.
    private(set) var now: UInt64 = Monotonic.now()
    private let sweepInterval: UInt64
    private var nextSweep: UInt64 = 0

    init(index: Int, server: ServerContext) throws {
        self.index = index
        self.server = server
        encoder = ResponseEncoder(loopIndex: index, processPrefix: server.idPrefix)
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw SocketError.makeFailed("epoll_create1") }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else {
            close(epollFD)
            throw SocketError.makeFailed("eventfd")
        }
        let shortest = min(server.headerTimeout, server.idleTimeout)
        sweepInterval = max(5_000_000, min(100_000_000, shortest / 4))
        _ = register(wakeFD, events: EPOLLIN.rawValue)
    }

    deinit {
        readBuffer.deallocate()
    }

    // MARK: - Cross-thread entry points

    /// Runs `job` on the loop thread. Dropped if the loop has stopped.
    func execute(_ job: @escaping @Sendable () -> Void) {
        let mustWake = jobs.withLock { state -> Bool in
            guard !state.isClosed else { return false }
            state.queue.append(job)
            defer { state.isWakePending = true }
            return !state.isWakePending
        }
        if mustWake {
            var one: UInt64 = 1
            // The eventfd stays open until `isClosed` is set under the same lock, so this never hits a reused fd.
            jobs.withLock { state in
                if !state.isClosed { _ = write(wakeFD, &one, 8) }
            }
        }
    }

    // MARK: - Loop thread

    func startAccepting(_ listeners: [Listener]) {
        self.listeners = listeners
        isAccepting = registerListeners()
    }

    /// EPOLLEXCLUSIVE: with several loops on one listening socket, a new connection wakes one of them.
    private func registerListeners() -> Bool {
        var all = true
        for listener in listeners where !register(listener.fd, events: EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue) {
            all = false
        }
        return all
    }

    private func unregisterListeners() {
        for listener in listeners {
            epoll_ctl(epollFD, EPOLL_CTL_DEL, listener.fd, nil)
        }
    }

    func stopAccepting() {
        if isAccepting && acceptPausedUntil == 0 {
            unregisterListeners()
        }
        isAccepting = false
        listeners = []
    }

    /// Stops keep-alive: idle connections close now, the others after their current response.
    func beginDrain() {
        isDraining = true
        for connection in connections {
            connection?.drain()
        }
    }

    func stop() {
        isRunning = false
    }

    func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        nextSweep = Monotonic.now() + sweepInterval
        // Until then the loop polls instead of sleeping (`HTTPServerConfiguration.busyPoll`).
        var pollUntil: UInt64 = 0
        while isRunning {
            now = Monotonic.now()
            let timeout =
                now < pollUntil ? 0 : Int32(clamping: (nextSweep > now ? nextSweep - now : 0) / 1_000_000 + 1)
            let count = epoll_wait(epollFD, &events, Int32(events.count), timeout)
            if count < 0 {
                if errno == EINTR { continue }
                server.logger.error("epoll_wait failed", metadata: ["errno": "\(errno)"])
                break
            }
            now = Monotonic.now()
            if count > 0 { pollUntil = now + server.busyPoll }
            for slot in 0..<Int(count) {
                let event = events[slot]
                let fd = event.data.fd
                if fd == wakeFD {
                    runJobs()
                } else if isAccepting, let listener = listeners.first(where: { $0.fd == fd }) {
                    acceptConnections(on: listener)
                } else if fd >= 0 && Int(fd) < connections.count, let connection = connections[Int(fd)] {
                    connection.handle(events: event.events)
                }
            }
            if now >= nextSweep {
                sweep()
                nextSweep = now + sweepInterval
            }
        }
        for connection in connections {
            connection?.close()
        }
        let leftover = jobs.withLock { state -> [@Sendable () -> Void] in
            state.isClosed = true
            Glibc.close(wakeFD)
            defer { state.queue = [] }
            return state.queue
        }
        _ = leftover
        Glibc.close(epollFD)
        hasExited.withLock { $0 = true }
    }

    private func runJobs() {
        var counter: UInt64 = 0
        _ = read(wakeFD, &counter, 8)
        let queued = jobs.withLock { state -> [@Sendable () -> Void] in
            state.isWakePending = false
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
        for job in queued { job() }
    }

    private func acceptConnections(on listener: Listener) {
        if acceptPausedUntil != 0 { return }
        for _ in 0..<64 {
            guard let (fd, peer, credentials) = Socket.accept(listener.fd, isUnix: listener.isUnix) else {
                switch errno {
                case EAGAIN, EWOULDBLOCK:
                    return
                case ECONNABORTED, EPROTO, EPERM:
                    continue
                default:
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: stop polling the listener for a moment, or level-triggered
                    // epoll would spin on it.
                    server.logger.warning("accept failed; pausing accepts", metadata: ["errno": "\(errno)"])
                    unregisterListeners()
                    acceptPausedUntil = now + 100_000_000
                    return
                }
            }
            let key = PeerKey.of(peer: peer, credentials: credentials)
            switch admit(key, isUnix: listener.isUnix) {
            case .success(let slot):
                adopt(
                    fd: fd, peer: peer, credentials: credentials, isTCP: !listener.isUnix, slot: slot, key: key,
                    tls: listener.tls?.context, handler: listener.handler)
            case .failure(let refusal):
                refuseConnection(fd, peer: peer, refusal, isTLS: listener.tls != nil)
            }
        }
    }

    /// A slot for a new connection from `key`. When none is free, a TCP connection takes the slot of this loop's
    /// oldest connection still on probation (a client over its limit that has not yet authenticated): a token
    /// holder sends its head at once and keeps the slot, while a flood cannot hold the reserve by outpacing it.
    private func admit(_ key: PeerKey, isUnix: Bool) -> Result<ConnectionClass, LimitRefusal> {
        let first = server.admission.withLock { $0.openConnection(key, isUnix: isUnix) }
        guard case .failure = first, !isUnix, evictOldestProbation() else { return first }
        return server.admission.withLock { $0.openConnection(key, isUnix: isUnix) }
    }

    /// Connections admitted on probation, oldest first; some may have authenticated or closed since.
    private var probationQueue: [Connection] = []

    /// Closes the oldest connection holding a probation slot (one refused already and lingering, or one still
    /// awaiting its authentication, then counted refused for the limit it was over); false when there is none.
    private func evictOldestProbation() -> Bool {
        while !probationQueue.isEmpty {
            let oldest = probationQueue.removeFirst()
            guard oldest.holdsProbationSlot, case .probation(let refusal) = oldest.slot else { continue }
            if oldest.isAwaitingAuthentication { server.warnings.record(refusal, peer: oldest.peer, now: now) }
            oldest.close()
            return true
        }
        return false
    }

    /// Over a connection limit: the accepted connection gets the 429 or 503 problem best-effort (plain HTTP only:
    /// a TLS client could not read it before a handshake), and is closed.
    private func refuseConnection(_ fd: Int32, peer: String, _ refusal: LimitRefusal, isTLS: Bool) {
        server.warnings.record(refusal, peer: peer, now: now)
        if isTLS {
            Glibc.close(fd)
            return
        }
        var bytes: [UInt8] = []
        let response = HTTPResponse.serverProblem(refusal.status, detail: refusal.detail, instance: nil, retryAfter: 1)
        encoder.encode(
            response, requestID: encoder.nextID(), omitBody: false, keepAlive: false, http10: false, into: &bytes)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        Glibc.close(fd)
    }

    /// Takes ownership of a connected non-blocking socket, already counted in the admission ledger as `slot` of
    /// `key`; with `tls`, the connection handshakes before it reads requests.
    @discardableResult
    func adopt(
        fd: Int32, peer: String, credentials: PeerCredentials? = nil, isTCP: Bool = true, slot: ConnectionClass,
        key: PeerKey, tls: TLSServerContext? = nil, handler: (any HTTPHandler)? = nil
    ) -> Connection? {
        if isTCP { Socket.setNoDelay(fd) }
        let connection = Connection(
            fd: fd, peer: peer, credentials: credentials, loop: self, slot: slot, key: key, tls: tls,
            handler: handler)
        guard register(fd, events: EPOLLIN.rawValue) else {
            Glibc.close(fd)
            server.admission.withLock { $0.closeConnection(slot, key: key) }
            return nil
        }
        connection.registeredEvents = EPOLLIN.rawValue
        let slot = Int(fd)
        if slot >= connections.count {
            connections.append(contentsOf: repeatElement(nil, count: slot - connections.count + 1))
        }
        connections[slot] = connection
        connectionCount += 1
        if connection.holdsProbationSlot { probationQueue.append(connection) }
        if isDraining { connection.drain() }
        return connection
    }

    func register(_ fd: Int32, events: UInt32) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        return epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0
    }

    func modify(_ fd: Int32, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
    }

    /// Called by a connection as it closes its descriptor.
    func forget(_ connection: Connection) {
        epoll_ctl(epollFD, EPOLL_CTL_DEL, connection.fd, nil)
        let slot = Int(connection.fd)
        if slot < connections.count, connections[slot] === connection {
            connections[slot] = nil
            connectionCount -= 1
        }
        server.admission.withLock { $0.closeConnection(connection.slot, key: connection.key) }
        closedSinceTrim += 1
    }

    /// Connections closed since memory was last given back to the system.
    private var closedSinceTrim = 0

    /// After a burst (many connections closed) and once no request bodies are buffered, asks glibc to return
    /// free heap memory to the system: without it, RSS stays at the burst's peak.
    private func trimMemoryAfterBurst() {
        guard closedSinceTrim >= 64, server.admission.withLock({ $0.bodyBytes == 0 }) else { return }
        closedSinceTrim = 0
        malloc_trim(0)
    }

    private func sweep() {
        trimMemoryAfterBurst()
        probationQueue.removeAll { !$0.holdsProbationSlot }
        if acceptPausedUntil != 0 && now >= acceptPausedUntil {
            acceptPausedUntil = 0
            if isAccepting && !registerListeners() {
                isAccepting = false
            }
        }
        for connection in connections {
            if let connection, connection.deadline != 0, now >= connection.deadline {
                connection.deadlinePassed()
            }
        }
    }
}

/// A listening socket the loops accept on.
struct Listener: Sendable {
    let fd: Int32
    /// A Unix-domain socket: its peers get SO_PEERCRED credentials and no TCP_NODELAY.
    let isUnix: Bool
    /// TLS on this listener (TCP only).
    var tls: TLSCredentials?
    /// The Unix socket's path, removed when the listener closes (nil for TCP and abstract sockets).
    var path: String? = nil
    /// The handler of this listener's connections; nil: the server's.
    var handler: (any HTTPHandler)? = nil
}

/// Replies written without a connection object.
enum ServerErrorReply {
    /// The method reported to the access log for a request refused before its method was known.
    static let unknownMethod = HTTPMethod(rawValue: "-")!
}
