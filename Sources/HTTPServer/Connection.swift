import CLinux
import Glibc

/// One client connection, confined to its event loop's thread. It reads into the loop's buffer, keeps unparsed
/// bytes, answers requests strictly in order (a `.deferred` response holds back later pipelined requests), and
/// writes everything pending with one `send`. Each head goes to the handler's `admit` and the client limits before
/// any of its body is read.
final class Connection {
    let fd: Int32
    let peer: String
    /// SO_PEERCRED of a Unix-socket peer; nil over TCP.
    let credentials: PeerCredentials?
    /// What answers this connection's requests: the server's handler, or the one of the listener it came from.
    let handler: any HTTPHandler
    unowned let loop: EventLoop
    /// The pool the connection's slot was taken from, and the peer it is counted against.
    private(set) var slot: ConnectionClass
    let key: PeerKey

    /// Open on a probation slot (admitted beyond its client's limit, not authenticated), refused or not.
    var holdsProbationSlot: Bool {
        if case .probation = slot { return !isClosed }
        return false
    }

    /// On probation and not yet answered: its first request must authenticate.
    var isAwaitingAuthentication: Bool { holdsProbationSlot && !isClosingAfterWrite && !isLingering }
    var registeredEvents: UInt32 = 0
    /// When the current timer expires (monotonic ns), or 0.
    private(set) var deadline: UInt64 = 0
    private(set) var isClosed = false

    private enum Timer {
        /// A TLS handshake, which must end within `headerTimeout` of the accept.
        case handshake
        case idle
        case request
        case stalledWriter
        case linger
    }
    private var timer = Timer.idle

    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputStart = 0
    private var parser: HTTPRequestParser
    private var isAwaitingDeferred = false
    /// The streamed body being written; no further requests are read while it lasts.
    private var stream: ResponseStream?
    private var isStreamFinished = false
    /// No further requests are read; close (lingering) once the output is written.
    private var isClosingAfterWrite = false
    private var isPeerClosed = false
    private var isLingering = false
    private var requestStartedAt: UInt64 = 0
    /// When the current request's head was admitted; its body's deadline counts from here.
    private var bodyStartedAt: UInt64 = 0
    private var lastActivity: UInt64
    /// Unparsed bytes held at most: a head's worth and one read. Body bytes are parsed as they arrive.
    private let maxBufferedInput: Int

    /// A request admitted at its head and not yet answered: counted in the admission ledger until then.
    private struct ActiveRequest {
        var key: PeerKey
        var bodyBytes: Int
        var context: RequestContext
    }
    private var active: ActiveRequest?

    /// The TLS session once established; nil on a plain connection, whose bytes go straight through the socket.
    private var session: TLSSession?
    /// A connection of the TLS listener until its session is established.
    private enum Handshake {
        /// Nothing has arrived yet: a TLS record starts the handshake, anything else is read as plain HTTP.
        case awaitingFirstByte(TLSServerContext)
        case running(TLSSession)
    }
    private var handshake: Handshake?
    /// The certificate the TLS client sent and the client CA verified.
    private var clientCertificate: ClientCertificate?
    /// Plain HTTP arrived on the TLS listener: its first head is answered 400 and the connection closed, as nginx
    /// does.
    private var isPlainOnTLSPort = false

    /// Output above this stops request processing until the client reads.
    private static let outputHighWater = 1024 * 1024
    /// How long a closing connection keeps reading (and discarding) so the client sees the last response
    /// rather than a reset.
    private static let lingerTime: UInt64 = 2_000_000_000
    private static let drainingLingerTime: UInt64 = 200_000_000
    /// How long a connection on probation (`ConnectionClass.probation`) has to send an authenticated head before
    /// its reserved slot is taken back, so that a flood cannot hold the reserve with silent or trickling
    /// connections.
    private static let probationTime: UInt64 = 1_000_000_000
    private let probationEnds: UInt64

    init(
        fd: Int32, peer: String, credentials: PeerCredentials? = nil, loop: EventLoop, slot: ConnectionClass,
        key: PeerKey, tls: TLSServerContext? = nil, handler: (any HTTPHandler)? = nil
    ) {
        self.fd = fd
        self.handler = handler ?? loop.server.handler
        self.peer = peer
        self.credentials = credentials
        self.loop = loop
        self.slot = slot
        self.key = key
        let limits = loop.server.configuration.limits
        parser = HTTPRequestParser(limits: limits)
        lastActivity = loop.now
        probationEnds = loop.now + min(Connection.probationTime, loop.server.headerTimeout)
        maxBufferedInput = limits.allHeaders + limits.requestLine + loop.readBuffer.count
        deadline = lastActivity + loop.server.idleTimeout
        if let tls {
            handshake = .awaitingFirstByte(tls)
            timer = .handshake
            deadline = lastActivity + loop.server.headerTimeout
        }
        if case .probation = slot { deadline = min(deadline, probationEnds) }
    }

    private var hasPendingOutput: Bool { outputStart < output.count }

    // MARK: - Events

    func handle(events: UInt32) {
        // EPOLLERR or EPOLLHUP: the connection is reset or shut both ways; nothing more can be written.
        if events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            close()
            return
        }
        var events = events
        if handshake != nil {
            continueHandshake()
            if isClosed || handshake != nil { return }
            // Established (or plain HTTP): the first request may already be waiting.
            events = EPOLLIN.rawValue
        }
        if events & EPOLLOUT.rawValue != 0 {
            flush()
            if isClosed { return }
            if stream != nil { pullStream() }
            if !hasPendingOutput { processInput() }
        }
        // A TLS read may wait for the socket to be writable (OpenSSL had to send before it could read on).
        if events & EPOLLIN.rawValue != 0
            || (events & EPOLLOUT.rawValue != 0 && session?.isReadWaitingForWritable == true)
        {
            readAndProcess()
            if isClosed { return }
        }
        flush()
        afterIO()
    }

    private var wantsInput: Bool {
        !isPeerClosed && (isLingering || (!isClosingAfterWrite && input.count - inputStart < maxBufferedInput))
    }

    /// Reads one buffer at a time and parses it before reading more, so that a body is read only once its head
    /// was admitted and no more than `maxBufferedInput` unparsed bytes are held.
    private func readAndProcess() {
        while !isClosed && wantsInput {
            guard let count = readChunk() else { return }
            processInput()
            if let session {
                // A TLS read returns one record (at most 16 KiB); a shorter one was the last the socket held.
                if count < 16 * 1024 && !session.hasPendingPlaintext { return }
            } else if count < loop.readBuffer.count {
                return
            }
        }
    }

    /// One `recv` (or TLS record) into the loop's buffer, kept in `input` unless lingering; nil when nothing was
    /// read. A lingering TLS connection reads the raw socket: what still comes is dropped undecrypted.
    private func readChunk() -> Int? {
        let buffer = loop.readBuffer
        if let session, !isLingering { return readRecord(session) }
        while true {
            let count = recv(fd, buffer.baseAddress, buffer.count, 0)
            if count > 0 {
                lastActivity = loop.now
                if !isLingering {
                    input.append(contentsOf: UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
                }
                return count
            }
            if count == 0 {
                isPeerClosed = true
                return nil
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return nil
            default:
                // ECONNRESET and the like: the client is gone. Control flow, not an error worth logging.
                close()
                return nil
            }
        }
    }

    private func readRecord(_ session: TLSSession) -> Int? {
        switch session.read(into: loop.readBuffer) {
        case .bytes(let count):
            lastActivity = loop.now
            input.append(contentsOf: UnsafeRawBufferPointer(start: loop.readBuffer.baseAddress, count: count))
            return count
        case .wouldBlock:
            return nil
        case .closed:
            isPeerClosed = true
            return nil
        case .failed:
            close()
            return nil
        }
    }

    // MARK: - TLS handshake

    /// Goes on with the handshake as far as the socket allows; registers the readiness it waits for.
    private func continueHandshake() {
        if case .awaitingFirstByte(let context) = handshake {
            guard let isTLS = firstByteIsTLSRecord() else { return }
            guard isTLS else {
                handshake = nil
                isPlainOnTLSPort = true
                timer = .idle
                return
            }
            guard let session = TLSSession(context: context, fd: fd) else {
                close()
                return
            }
            handshake = .running(session)
        }
        guard case .running(let session) = handshake else { return }
        switch session.handshake() {
        case .established:
            handshake = nil
            self.session = session
            clientCertificate = session.clientCertificate
            timer = .idle
        case .waits(let events):
            if events != registeredEvents {
                loop.modify(fd, events: events)
                registeredEvents = events
            }
        case .failed:
            // Garbage, a truncated hello, an unverifiable client certificate: no HTTP answer can be sent.
            close()
        }
    }

    /// Peeks at the first byte: true for a TLS handshake record (RFC 8446 §5.1, content type 22), false for
    /// anything else, nil when nothing is there yet (or the client left, which closes).
    private func firstByteIsTLSRecord() -> Bool? {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK))
        if count == 1 { return byte == 0x16 }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return nil }
        close()
        return nil
    }

    /// Parses and answers complete requests until one is deferred, output backs up, or more bytes are needed.
    private func processInput() {
        while !isClosed && !isAwaitingDeferred && stream == nil && !isClosingAfterWrite && !isLingering
            && (inputStart < input.count || parser.isAwaitingNoBytes)
            && output.count - outputStart < Connection.outputHighWater
        {
            let start = inputStart
            let (consumed, event) = input.withUnsafeBufferPointer { bytes in
                parser.parse(UnsafeBufferPointer(rebasing: bytes[start...]))
            }
            inputStart += consumed
            switch event {
            case .needMore:
                compactInput()
                return
            case .head(let head, _, _) where isPlainOnTLSPort:
                respondWithError(.badRequest, detail: "The plain HTTP request was sent to HTTPS port", path: head.path)
            case .head(let head, let announcedBody, let expectsContinue):
                admit(head, announcedBody: announcedBody, expectsContinue: expectsContinue)
            case .failure(let error):
                respondWithError(error.status, detail: error.detail, path: error.path)
            case .request(let request, let keepAlive):
                dispatch(request, keepAlive: keepAlive)
            }
        }
        compactInput()
    }

    /// Buffers larger than this are given back once emptied, so idle connections hold little memory.
    private static let keptBufferCapacity = 16 * 1024

    private func compactInput() {
        if inputStart == input.count {
            input.removeAll(keepingCapacity: input.capacity <= Connection.keptBufferCapacity)
            inputStart = 0
        } else if inputStart > 0 && inputStart >= input.count / 2 {
            input.removeSubrange(0..<inputStart)
            inputStart = 0
        }
    }

    // MARK: - Head stage

    /// A head is in: the handler's `admit` decides (authentication), then the client limits; only then is the
    /// body read. A refusal is answered at once and the connection closes, its body unread.
    private func admit(_ head: HTTPRequest, announcedBody: Int?, expectsContinue: Bool) {
        requestStartedAt = 0
        let context = RequestContext(
            requestID: loop.encoder.requestID(for: head), peer: peer, receivedAt: .now, peerCredentials: credentials,
            clientCertificate: clientCertificate)
        switch handler.admit(head, context: context) {
        case .answer(let result):
            answerWithoutBody(head, result, context: context)
        case .proceed(let admitted, let isAuthenticated):
            let bodyBytes = announcedBody ?? loop.server.configuration.limits.body
            if let refusal = begin(admitted, isAuthenticated: isAuthenticated, bodyBytes: bodyBytes) {
                refuse(refusal, path: head.path)
                return
            }
            bodyStartedAt = loop.now
            // RFC 9110 §10.1.1: tell the client to send the body it is holding back, now that it is wanted.
            if expectsContinue { output.append(contentsOf: Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) }
        }
    }

    /// Counts an admitted head against its client's limits, first moving an authenticated TCP connection out of
    /// the anonymous pool or probation; the refusal when a limit is hit.
    private func begin(_ context: RequestContext, isAuthenticated: Bool, bodyBytes: Int) -> LimitRefusal? {
        let requestKey = isAuthenticated ? PeerKey.principal(context.peer) : key
        return loop.server.admission.withLock { ledger -> LimitRefusal? in
            if isAuthenticated { slot = ledger.authenticate(slot, key: key) }
            if case .probation(let refusal) = slot { return refusal }
            if let refusal = ledger.beginRequest(requestKey, bodyBytes: bodyBytes) { return refusal }
            active = ActiveRequest(key: requestKey, bodyBytes: bodyBytes, context: context)
            return nil
        }
    }

    /// The request is answered (or abandoned): its counts in the ledger are given back.
    private func endActiveRequest() {
        guard let request = active else { return }
        active = nil
        loop.server.admission.withLock { $0.endRequest(request.key, bodyBytes: request.bodyBytes) }
    }

    /// Answers a head the handler refused. A request that announced a body is never read further: what arrived
    /// of it is dropped, nothing more is read, and the connection closes after the answer. One without a body
    /// leaves the connection as its head asked.
    private func answerWithoutBody(_ head: HTTPRequest, _ result: HTTPHandlerResult, context: RequestContext) {
        let keepAlive = parser.skipBodylessRequest()
        if !keepAlive {
            input = []
            inputStart = 0
            isClosingAfterWrite = true
        }
        run(result, for: head, context: context, keepAlive: keepAlive)
    }

    /// A client limit was hit: 429 or 503 with `Retry-After`, a warning (rate-limited) and a count.
    private func refuse(_ refusal: LimitRefusal, path: String?) {
        loop.server.warnings.record(refusal, peer: peer, now: loop.now)
        respondWithError(refusal.status, detail: refusal.detail, path: path, retryAfter: 1)
    }

    // MARK: - Answers

    private func dispatch(_ request: HTTPRequest, keepAlive: Bool) {
        requestStartedAt = 0
        let context =
            active?.context.received(at: .now)
            ?? RequestContext(
                requestID: loop.encoder.requestID(for: request), peer: peer, receivedAt: .now,
                peerCredentials: credentials, clientCertificate: clientCertificate)
        run(handler.handle(request, context: context), for: request, context: context, keepAlive: keepAlive)
    }

    /// Queues the answer now, or runs deferred work as a Task and holds back later requests until it is done.
    private func run(_ result: HTTPHandlerResult, for request: HTTPRequest, context: RequestContext, keepAlive: Bool) {
        switch result {
        case .response(let response):
            respond(to: request, with: response, context: context, keepAlive: keepAlive)
        case .stream(let head, let stream):
            startStream(request, head: head, stream: stream, context: context)
        case .deferred(let work):
            isAwaitingDeferred = true
            let loop = self.loop
            let connection = LoopBound(value: self)
            Task {
                let response = await work()
                loop.execute {
                    connection.value.finishDeferred(request, response, context: context, keepAlive: keepAlive)
                }
            }
        }
    }

    /// Writes the head, then the stream's bytes as they come; the connection closes when it ends.
    private func startStream(
        _ request: HTTPRequest, head: HTTPResponse, stream: ResponseStream, context: RequestContext
    ) {
        loop.encoder.encode(
            head, requestID: context.requestID, omitBody: true, keepAlive: false, http10: request.version == .http10,
            streamed: true, into: &output)
        if let accessLog = loop.server.accessLog {
            accessLog(request, head, context, .now - context.receivedAt)
        }
        self.stream = stream
        let loop = self.loop
        let connection = LoopBound(value: self)
        stream.attach { loop.execute { connection.value.pullStream() } }
    }

    /// Moves what the stream queued into the output, while the client keeps up.
    private func pullStream() {
        guard !isClosed, let stream, output.count - outputStart < Connection.outputHighWater else { return }
        let (bytes, finished) = stream.take()
        output += bytes
        if finished { isStreamFinished = true }
        flush()
        afterIO()
    }

    private func finishDeferred(
        _ request: HTTPRequest,
        _ response: HTTPResponse,
        context: RequestContext,
        keepAlive: Bool
    ) {
        guard !isClosed else { return }
        isAwaitingDeferred = false
        respond(to: request, with: response, context: context, keepAlive: keepAlive)
        processInput()
        flush()
        afterIO()
    }

    private func respond(to request: HTTPRequest, with response: HTTPResponse, context: RequestContext, keepAlive: Bool)
    {
        var keepAlive = keepAlive && !loop.isDraining
        if keepAlive, let option = response.headers["connection"], HTTPSyntax.listElements(option).contains("close") {
            keepAlive = false
        }
        loop.encoder.encode(
            response,
            requestID: context.requestID,
            omitBody: request.method == .HEAD,
            keepAlive: keepAlive,
            http10: request.version == .http10,
            into: &output
        )
        if let accessLog = loop.server.accessLog {
            accessLog(request, response, context, .now - context.receivedAt)
        }
        if !keepAlive { isClosingAfterWrite = true }
        endActiveRequest()
    }

    /// A problem response from the server itself, after which the connection closes.
    private func respondWithError(_ status: HTTPStatus, detail: String, path: String?, retryAfter: Int? = nil) {
        let response = HTTPResponse.serverProblem(status, detail: detail, instance: path, retryAfter: retryAfter)
        let context = RequestContext(
            requestID: loop.encoder.nextID(), peer: peer, receivedAt: .now, peerCredentials: credentials,
            clientCertificate: clientCertificate)
        let request = HTTPRequest(method: ServerErrorReply.unknownMethod, target: path ?? "*")
        respond(to: request, with: response, context: context, keepAlive: false)
        loop.server.logger.debug(
            "Refused request",
            metadata: ["http.status": "\(status.code)", "http.peer": "\(peer)", "http.detail": "\(detail)"]
        )
    }

    private func flush() {
        if let session {
            flushRecords(session)
            return
        }
        while outputStart < output.count {
            let start = outputStart
            let sent = output.withUnsafeBytes { bytes in
                send(fd, bytes.baseAddress! + start, bytes.count - start, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                outputStart += sent
                lastActivity = loop.now
                continue
            }
            if sent < 0 && errno == EINTR { continue }
            if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            // EPIPE, ECONNRESET: the client hung up.
            close()
            return
        }
        output.removeAll(keepingCapacity: output.capacity <= Connection.keptBufferCapacity)
        outputStart = 0
    }

    /// Writes the pending output through the TLS session, one record per write.
    private func flushRecords(_ session: TLSSession) {
        while outputStart < output.count {
            let start = outputStart
            let outcome = output.withUnsafeBytes { session.write(UnsafeRawBufferPointer(rebasing: $0[start...])) }
            switch outcome {
            case .bytes(let count):
                outputStart += count
                lastActivity = loop.now
            case .wouldBlock:
                return
            case .closed, .failed:
                close()
                return
            }
        }
        output.removeAll(keepingCapacity: output.capacity <= Connection.keptBufferCapacity)
        outputStart = 0
    }

    /// Decides what comes next once the I/O of an event is done: lingering close, close, the epoll interest and
    /// the timer.
    private func afterIO() {
        guard !isClosed else { return }
        if stream != nil {
            afterStreamIO()
            return
        }
        if !hasPendingOutput && !isAwaitingDeferred {
            if isClosingAfterWrite && !isLingering {
                startLinger()
                if isClosed { return }
            } else if isPeerClosed {
                // The client sent EOF: every complete request is answered and no more can come.
                close()
                return
            }
        }
        var wanted: UInt32 = 0
        if wantsInput { wanted |= EPOLLIN.rawValue }
        if hasPendingOutput { wanted |= EPOLLOUT.rawValue }
        if let session { wanted = session.interest(wanted) }
        if wanted != registeredEvents {
            loop.modify(fd, events: wanted)
            registeredEvents = wanted
        }
        refreshDeadline()
    }

    /// A streaming connection reads only to notice the client leaving (what it sends is dropped), writes while
    /// there is output, and ends when the stream has finished and all is written.
    private func afterStreamIO() {
        inputStart = input.count
        compactInput()
        if isPeerClosed || (isStreamFinished && !hasPendingOutput) || loop.isDraining && !hasPendingOutput {
            close()
            return
        }
        var wanted = EPOLLIN.rawValue
        if hasPendingOutput { wanted |= EPOLLOUT.rawValue }
        if let session { wanted = session.interest(wanted) }
        if wanted != registeredEvents {
            loop.modify(fd, events: wanted)
            registeredEvents = wanted
        }
        timer = hasPendingOutput ? .stalledWriter : .idle
        deadline = hasPendingOutput ? lastActivity + loop.server.idleTimeout : 0
    }

    private func startLinger() {
        isLingering = true
        input = []
        inputStart = 0
        if isPeerClosed {
            close()
            return
        }
        // Half-close: the client reads the response and EOF; bytes it still sends are read and dropped, so the
        // kernel does not answer them with a reset that could destroy the response. TLS says it is done first.
        session?.sendCloseNotify()
        shutdown(fd, Int32(SHUT_WR))
        timer = .linger
        // While the server shuts down, linger briefly: the response is already in the kernel's send buffer.
        let lingerTime = loop.isDraining ? Connection.drainingLingerTime : Connection.lingerTime
        deadline = loop.now + min(lingerTime, loop.server.idleTimeout)
    }

    private func refreshDeadline() {
        let server = loop.server
        if isLingering { return }
        if hasPendingOutput {
            timer = .stalledWriter
            deadline = lastActivity + server.idleTimeout
        } else if isAwaitingDeferred {
            deadline = 0
        } else if parser.isReadingBody {
            timer = .request
            deadline = bodyDeadline
        } else if parser.hasPartialRequest {
            if requestStartedAt == 0 { requestStartedAt = loop.now }
            timer = .request
            deadline = requestStartedAt + server.headerTimeout
        } else {
            timer = .idle
            deadline = lastActivity + server.idleTimeout
        }
        if case .probation = slot, !isAwaitingDeferred, !hasPendingOutput {
            deadline = min(deadline, probationEnds)
        }
    }

    /// A body must arrive at `minBodyRate` on average after a grace of `headerTimeout` from its head: a total
    /// deadline that grows with the bytes received, not a timer that each byte restarts.
    private var bodyDeadline: UInt64 {
        let rate = UInt64(max(1, loop.server.configuration.clientLimits.minBodyRate))
        let allowance = UInt64(parser.bodyBytesReceived) * 1_000_000_000 / rate
        return bodyStartedAt + loop.server.headerTimeout + allowance
    }

    /// The path of the request being received, once its request line is in.
    private var currentPath: String? {
        parser.currentPath
            ?? input.withUnsafeBufferPointer {
                parser.pathOfPartialHead(UnsafeBufferPointer(rebasing: $0[inputStart...]))
            }
    }

    /// The sweep found the timer expired.
    func deadlinePassed() {
        switch timer {
        case .handshake:
            let refusal = LimitRefusal(
                kind: .slowClient, detail: "The TLS handshake was not completed within the time allowed.")
            loop.server.warnings.record(refusal, peer: peer, now: loop.now)
            close()
        case .request:
            let refusal = LimitRefusal(
                kind: .slowClient, detail: "The request was not received within the time allowed.")
            loop.server.warnings.record(refusal, peer: peer, now: loop.now)
            respondWithError(.requestTimeout, detail: refusal.detail, path: currentPath)
            flush()
            afterIO()
        case .idle, .stalledWriter, .linger:
            close()
        }
    }

    /// Shutdown has begun: close now if nothing is in progress; otherwise the next response says close.
    func drain() {
        if stream != nil { stream?.finish() }
        if isLingering || (!hasPendingOutput && !isAwaitingDeferred && !parser.hasPartialRequest) {
            close()
        }
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        stream?.markClosed()
        endActiveRequest()
        loop.forget(self)
        Glibc.close(fd)
        input = []
        output = []
    }
}
