import CLinux
import Glibc

/// One client connection, confined to its event loop's thread. It reads into the loop's buffer, keeps unparsed
/// bytes, answers requests strictly in order (a `.deferred` response holds back later pipelined requests), and
/// writes everything pending with one `send`.
final class Connection {
    let fd: Int32
    let peer: String
    /// SO_PEERCRED of a Unix-socket peer; nil over TCP.
    let credentials: PeerCredentials?
    unowned let loop: EventLoop
    var registeredEvents: UInt32 = 0
    /// When the current timer expires (monotonic ns), or 0.
    private(set) var deadline: UInt64 = 0
    private(set) var isClosed = false

    private enum Timer {
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
    private var lastActivity: UInt64
    private let maxBufferedInput: Int

    /// Output above this stops request processing until the client reads.
    private static let outputHighWater = 1024 * 1024
    /// How long a closing connection keeps reading (and discarding) so the client sees the last response
    /// rather than a reset.
    private static let lingerTime: UInt64 = 2_000_000_000
    private static let drainingLingerTime: UInt64 = 200_000_000

    init(fd: Int32, peer: String, credentials: PeerCredentials? = nil, loop: EventLoop) {
        self.fd = fd
        self.peer = peer
        self.credentials = credentials
        self.loop = loop
        let limits = loop.server.configuration.limits
        parser = HTTPRequestParser(limits: limits)
        lastActivity = loop.now
        maxBufferedInput = limits.body + limits.allHeaders + limits.requestLine + 64 * 1024
        deadline = lastActivity + loop.server.idleTimeout
    }

    private var hasPendingOutput: Bool { outputStart < output.count }

    // MARK: - Events

    func handle(events: UInt32) {
        // EPOLLERR or EPOLLHUP: the connection is reset or shut both ways; nothing more can be written.
        if events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            close()
            return
        }
        if events & EPOLLOUT.rawValue != 0 {
            flush()
            if isClosed { return }
            if stream != nil { pullStream() }
            if !hasPendingOutput { processInput() }
        }
        if events & EPOLLIN.rawValue != 0 {
            readAvailable()
            if isClosed { return }
            processInput()
        }
        flush()
        afterIO()
    }

    private func readAvailable() {
        let buffer = loop.readBuffer
        while true {
            let count = recv(fd, buffer.baseAddress, buffer.count, 0)
            if count > 0 {
                lastActivity = loop.now
                if !isLingering {
                    input.append(contentsOf: UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
                }
                if count < buffer.count || input.count - inputStart >= maxBufferedInput { return }
                continue
            }
            if count == 0 {
                isPeerClosed = true
                return
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return
            default:
                // ECONNRESET and the like: the client is gone. Control flow, not an error worth logging.
                close()
                return
            }
        }
    }

    /// Parses and answers complete requests until one is deferred, output backs up, or more bytes are needed.
    private func processInput() {
        while !isClosed && !isAwaitingDeferred && stream == nil && !isClosingAfterWrite && !isLingering
            && inputStart < input.count
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
            case .continueExpected:
                // RFC 9110 §10.1.1: tell the client to send the body it is holding back.
                output.append(contentsOf: Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
            case .failure(let error):
                respondWithError(error.status, detail: error.detail, path: error.path)
            case .request(let request, let keepAlive):
                dispatch(request, keepAlive: keepAlive)
            }
        }
        compactInput()
    }

    private func compactInput() {
        if inputStart == input.count {
            input.removeAll(keepingCapacity: input.capacity <= 64 * 1024)
            inputStart = 0
        } else if inputStart > 0 && inputStart >= input.count / 2 {
            input.removeSubrange(0..<inputStart)
            inputStart = 0
        }
    }

    private func dispatch(_ request: HTTPRequest, keepAlive: Bool) {
        requestStartedAt = 0
        let context = RequestContext(
            requestID: loop.encoder.requestID(for: request),
            peer: peer,
            receivedAt: .now,
            peerCredentials: credentials
        )
        switch loop.server.handler.handle(request, context: context) {
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
    }

    /// A problem response from the server itself, after which the connection closes.
    private func respondWithError(_ status: HTTPStatus, detail: String, path: String?) {
        let response = HTTPResponse.serverProblem(status, detail: detail, instance: path)
        let context = RequestContext(
            requestID: loop.encoder.nextID(), peer: peer, receivedAt: .now, peerCredentials: credentials)
        let request = HTTPRequest(method: ServerErrorReply.unknownMethod, target: path ?? "*")
        respond(to: request, with: response, context: context, keepAlive: false)
        loop.server.logger.debug(
            "Refused request",
            metadata: ["http.status": "\(status.code)", "http.peer": "\(peer)", "http.detail": "\(detail)"]
        )
    }

    private func flush() {
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
        output.removeAll(keepingCapacity: output.capacity <= 256 * 1024)
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
        let wantsInput =
            isLingering || (!isClosingAfterWrite && input.count - inputStart < maxBufferedInput)
        if wantsInput && !isPeerClosed { wanted |= EPOLLIN.rawValue }
        if hasPendingOutput { wanted |= EPOLLOUT.rawValue }
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
        // kernel does not answer them with a reset that could destroy the response.
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
            deadline = lastActivity + server.headerTimeout
        } else if parser.hasPartialRequest {
            if requestStartedAt == 0 { requestStartedAt = loop.now }
            timer = .request
            deadline = requestStartedAt + server.headerTimeout
        } else {
            timer = .idle
            deadline = lastActivity + server.idleTimeout
        }
    }

    /// The sweep found the timer expired.
    func deadlinePassed() {
        switch timer {
        case .request:
            respondWithError(
                .requestTimeout,
                detail: "The request was not received within the time allowed.",
                path: parser.currentPath
            )
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
        loop.forget(self)
        Glibc.close(fd)
        input = []
        output = []
    }
}
