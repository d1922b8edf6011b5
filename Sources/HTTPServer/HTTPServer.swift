import CLinux
import Glibc
import Logging
import Threading

/// An HTTP/1.1 server on non-blocking POSIX sockets and epoll.
///
/// `eventLoopCount` threads each run an epoll loop. They share the listening socket (registered with
/// `EPOLLEXCLUSIVE`, so a new connection wakes one loop), and each owns the connections it accepts for their
/// whole life, so connection state needs no locks. `.deferred` handlers run as Tasks and post their responses
/// back to the owning loop through its eventfd.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    /// Called once per response, on the event loop thread, after the response is queued for writing: the request,
    /// the handler's response, the context and the time since the request was received. Responses the server
    /// makes for requests it refused get method "-" and the path as target (or "*").
    public let accessLog: (@Sendable (HTTPRequest, HTTPResponse, RequestContext, Duration) -> Void)?
    private let handler: any HTTPHandler
    /// Further Unix sockets, each answered by its own handler (another protocol on the same loops and limits).
    private let extraSockets: [ExtraSocket]
    private let logger: Logger

    /// A Unix socket served beside the main listeners with a handler of its own: its routes, admission and errors
    /// are that handler's, while the event loops, connection limits and timeouts are the server's.
    public struct ExtraSocket: Sendable {
        public var socket: HTTPServerConfiguration.UnixSocket
        public var handler: any HTTPHandler

        public init(socket: HTTPServerConfiguration.UnixSocket, handler: any HTTPHandler) {
            self.socket = socket
            self.handler = handler
        }
    }

    private enum Phase {
        case idle
        case running(listeners: [Listener], loops: [EventLoop])
        case stopping
        case stopped
    }
    private let phase = Locked(Phase.idle)
    private let context: Locked<ServerContext?> = Locked(nil)

    public init(
        configuration: HTTPServerConfiguration,
        handler: any HTTPHandler,
        logger: Logger,
        accessLog: (@Sendable (HTTPRequest, HTTPResponse, RequestContext, Duration) -> Void)? = nil,
        extraSockets: [ExtraSocket] = []
    ) {
        self.configuration = configuration
        self.handler = handler
        self.extraSockets = extraSockets
        self.logger = logger
        self.accessLog = accessLog
    }

    /// Connections open right now, across all loops.
    public var openConnectionCount: Int {
        context.withLock { $0?.admission.withLock { $0.total } ?? 0 }
    }

    /// Open connections, buffered body bytes and refusals per client limit, for a metrics endpoint.
    public var statistics: HTTPServerStatistics {
        context.withLock { $0?.statistics ?? HTTPServerStatistics() }
    }

    /// Binds and listens (TCP, the Unix socket, or both), starts the loop threads and returns the bound TCP
    /// address (the real port when the configured one is 0; port 0 with an empty host when TCP is off). Ignores
    /// SIGPIPE for the process.
    @discardableResult
    public func start() throws -> SocketAddress {
        try phase.withLock { phase in
            guard case .idle = phase else { throw SocketError(operation: "Start (already started)", errno: EINVAL) }
            guard configuration.listensOnTCP || configuration.unixSocket != nil || !extraSockets.isEmpty else {
                throw SocketError(operation: "Start (neither TCP nor a Unix socket configured)", errno: EINVAL)
            }
            signal(SIGPIPE, SIG_IGN)
            var listeners: [Listener] = []
            var address = SocketAddress(host: "", port: 0)
            if configuration.listensOnTCP {
                let (fd, bound) = try Socket.makeListener(
                    host: configuration.host,
                    port: configuration.port,
                    backlog: configuration.backlog
                )
                listeners.append(Listener(fd: fd, isUnix: false, tls: configuration.tls))
                address = bound
            }
            var unixSockets = extraSockets.map { ($0.socket, Optional($0.handler)) }
            if let unix = configuration.unixSocket { unixSockets.insert((unix, nil), at: 0) }
            for (unix, socketHandler) in unixSockets {
                do {
                    let fd = try Socket.makeUnixListener(unix, backlog: configuration.backlog)
                    listeners.append(Listener(fd: fd, isUnix: true, path: unix.path, handler: socketHandler))
                } catch {
                    closeListeners(listeners)
                    throw error
                }
            }
            let server = ServerContext(
                configuration: configuration,
                handler: handler,
                logger: logger,
                accessLog: accessLog
            )
            var loops: [EventLoop] = []
            do {
                for index in 0..<max(1, configuration.eventLoopCount) {
                    loops.append(try EventLoop(index: index, server: server))
                }
            } catch {
                closeListeners(listeners)
                throw error
            }
            for loop in loops {
                loop.startAccepting(listeners)
                do throws(DetachedThread.SpawnError) {
                    try DetachedThread.spawn(name: "http-loop-\(loop.index)") { loop.run() }
                } catch {
                    throw SocketError(operation: "pthread_create", errno: error.errno)
                }
            }
            context.withLock { $0 = server }
            phase = .running(listeners: listeners, loops: loops)
            logger.info(
                "HTTP server listening",
                metadata: [
                    "http.address": "\(configuration.listensOnTCP ? address.description : "-")",
                    "http.tls": "\(configuration.listensOnTCP && configuration.tls != nil)",
                    "http.unix": "\(configuration.unixSocket?.path ?? "-")",
                    "http.unix_extra":
                        "\(extraSockets.isEmpty ? "-" : extraSockets.map(\.socket.path).joined(separator: ","))",
                    "http.event_loops": "\(loops.count)",
                ]
            )
            return address
        }
    }

    /// Stops accepting, lets in-flight requests finish (for at most `shutdownGrace`), then closes every
    /// connection and stops the loop threads. Safe to call more than once and from several tasks; every call
    /// returns once the server has stopped.
    public func shutdown() async {
        let taken = phase.withLock { phase -> ([Listener], [EventLoop])? in
            switch phase {
            case .idle:
                phase = .stopped
                return nil
            case .running(let listeners, let loops):
                phase = .stopping
                return (listeners, loops)
            case .stopping, .stopped:
                return nil
            }
        }
        guard let (listeners, loops) = taken else {
            while true {
                if case .stopped = phase.withLock({ $0 }) { return }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        // 1. Stop accepting on every loop before closing the shared listening sockets.
        let stoppedAccepting = Locked(0)
        for loop in loops {
            loop.execute {
                loop.stopAccepting()
                stoppedAccepting.withLock { $0 += 1 }
            }
        }
        while stoppedAccepting.withLock({ $0 }) < loops.count {
            try? await Task.sleep(for: .milliseconds(2))
        }
        closeListeners(listeners)
        // 2. Drain: idle connections close now, busy ones after their response, bounded by the grace period.
        for loop in loops {
            loop.execute { loop.beginDrain() }
        }
        let deadline = ContinuousClock.now + configuration.shutdownGrace
        while openConnectionCount > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        // 3. Stop the loops; each closes whatever is left.
        for loop in loops {
            loop.execute { loop.stop() }
        }
        for loop in loops {
            while !loop.hasExited.withLock({ $0 }) {
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        phase.withLock { $0 = .stopped }
        logger.info("HTTP server stopped")
    }

    /// Closes the listening sockets and removes the Unix socket's file.
    private func closeListeners(_ listeners: [Listener]) {
        for listener in listeners {
            close(listener.fd)
            if listener.isUnix, let path = listener.path, !path.hasPrefix("@") {
                unlink(path)
            }
        }
    }
}
