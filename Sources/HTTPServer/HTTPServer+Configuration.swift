/// How the server listens, how many threads it runs and the limits it enforces.
public struct HTTPServerConfiguration: Sendable {
    /// Size limits on a request; exceeding one gets the status named beside it.
    public struct Limits: Sendable {
        /// Request line, without CRLF (414).
        public var requestLine: Int = 8 * 1024
        /// One header field line, without CRLF (431).
        public var oneHeader: Int = 8 * 1024
        /// All header field lines together, CRLFs included (431). Also bounds chunked trailers.
        public var allHeaders: Int = 32 * 1024
        /// Number of header fields (431).
        public var headerCount: Int = 100
        /// Decoded body (413).
        public var body: Int = 1024 * 1024

        public init() {}
    }

    /// What one client may hold, and what all request bodies together may take (`AdmissionLedger` applies
    /// them). A peer is an IP address over TCP, a uid over the Unix socket, or the identity the head-stage check
    /// (`HTTPHandler.admit`) authenticated. A limit of one peer is answered 429, one of the server 503, both with
    /// `Retry-After`.
    public struct ClientLimits: Sendable {
        /// Connections of one IP address (not authenticated) or one uid.
        public var peerConnections: Int = 512
        /// Requests of one peer whose head has arrived and whose response is not yet written.
        public var peerRequests: Int = 256
        /// Body bytes of one peer's requests in progress (as announced; a chunked body counts as `Limits.body`).
        public var peerBufferedBytes: Int = 16 * 1024 * 1024
        /// Body bytes of all requests in progress together.
        public var bodyMemory: Int = 64 * 1024 * 1024
        /// Connection slots kept for Unix-socket peers and authenticated TCP callers: anonymous TCP peers may
        /// hold `maxConnections` minus this many.
        public var reservedConnections: Int = 256
        /// Once a head is in, its body must arrive at this average rate (bytes per second) after a grace of
        /// `headerTimeout`: a total deadline of `headerTimeout + received / rate` from the head, not a timer that
        /// restarts with each byte.
        public var minBodyRate: Int = 16 * 1024

        public init() {}
    }

    /// A Unix-domain stream socket to listen on, beside or instead of TCP.
    public struct UnixSocket: Sendable {
        /// The socket's path. A stale socket left there by an earlier run is replaced; a live one (something
        /// accepts connections on it) or a file that is not a socket makes `start()` fail.
        public var path: String
        /// The socket file's permission bits, e.g. 0o660. Connecting needs write permission on it.
        public var mode: UInt32
        /// The group to give the socket file, or nil to keep the process's group.
        public var groupID: UInt32?

        public init(path: String, mode: UInt32 = 0o660, groupID: UInt32? = nil) {
            self.path = path
            self.mode = mode
            self.groupID = groupID
        }
    }

    /// Whether to listen on TCP at `host:port`. When false, `unixSocket` must be set.
    public var listensOnTCP = true
    /// A Unix socket to listen on too (or alone); its peers' credentials reach handlers in `RequestContext`.
    public var unixSocket: UnixSocket?
    /// TLS 1.2 and 1.3 on the TCP listener, with this certificate and key (and client CA); nil serves plain HTTP.
    /// Plain HTTP sent to a TLS listener is answered 400, as nginx does.
    public var tls: TLSCredentials?
    /// An IPv4 or IPv6 literal, or "localhost".
    public var host: String = "127.0.0.1"
    /// 0 picks a free port; `HTTPServer.start()` returns the real one.
    public var port: UInt16 = 8080
    /// Event loop threads; each owns the connections it accepted. Handlers that block run off the loops (as
    /// `.deferred` tasks), so one loop serves a node-local API well: measured on 2 cores with wrk beside the
    /// server, 1 loop served as many requests at 64 connections as 2 did (~105k req/s) with a quarter of the p99
    /// (1.2 ms against 4.2 ms), because 2 loops and the client contend for the same 2 cores.
    public var eventLoopCount: Int = 1
    /// After a wake-up that found work, a loop polls epoll without sleeping for this long before it blocks
    /// again. A request that arrives meanwhile is answered without a thread wake-up, which costs tens of
    /// microseconds (more in a virtual machine). An idle server does not poll; a busy one spends at most this
    /// much CPU per gap between requests. Zero turns it off.
    public var busyPoll: Duration = .microseconds(100)
    /// Connections open at once. Beyond it, a new connection gets a 503 problem and is closed. See
    /// `ClientLimits.reservedConnections` for the part anonymous TCP peers cannot take.
    public var maxConnections: Int = 4096
    /// Time allowed to receive a request's header section, from its first byte (a total deadline); also the
    /// grace before `ClientLimits.minBodyRate` applies to a body. On expiry: 408 and close.
    public var headerTimeout: Duration = .seconds(10)
    /// A keep-alive connection with no request in progress is closed after this long. Also bounds a client that
    /// stops reading its responses.
    public var idleTimeout: Duration = .seconds(60)
    /// How long `shutdown()` waits for in-flight requests before closing everything.
    public var shutdownGrace: Duration = .seconds(10)
    /// Listen backlog.
    public var backlog: Int32 = 1024
    public var limits = Limits()
    public var clientLimits = ClientLimits()

    public init(host: String = "127.0.0.1", port: UInt16 = 8080) {
        self.host = host
        self.port = port
    }
}
