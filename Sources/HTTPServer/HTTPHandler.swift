import Synchronization

/// The credentials of a Unix-socket peer, as the kernel reported them (SO_PEERCRED) when it connected.
public struct PeerCredentials: Sendable, Hashable {
    public let pid: Int32
    public let uid: UInt32
    public let gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
}

/// Facts handlers learn about a request that the access log wants afterwards: the route pattern that matched and
/// who the request was made by. Shared by every copy of one request's context.
public final class RequestAnnotations: Sendable {
    private struct Values {
        var route: String?
        var actor: String?
    }
    private let values = Mutex(Values())

    public init() {}

    /// The matched route pattern (`/pfs/{address}`), set by the `Router`; nil when no route matched.
    public var route: String? {
        get { values.withLock { $0.route } }
        set { values.withLock { $0.route = newValue } }
    }

    /// Who made the request, as an authenticating handler determined it; nil when none did.
    public var actor: String? {
        get { values.withLock { $0.actor } }
        set { values.withLock { $0.actor = newValue } }
    }
}

/// What the server knows about the request besides its bytes.
public struct RequestContext: Sendable {
    /// The request's id: the client's `X-Request-Id` when it sent a sane one, otherwise generated. It is sent
    /// back in the response's `X-Request-Id`.
    public let requestID: String
    /// Who is asking. The server sets the transport peer ("address:port", "[::1]:5555" for IPv6, or "unix"); a
    /// handler in front that authenticates the request may pass the next handler a copy naming the identity it
    /// established instead (`replacingPeer(_:)`). `remoteAddress` keeps the transport peer.
    public let peer: String
    /// The transport peer, as the server accepted it: "address:port", or "unix".
    public let remoteAddress: String
    /// The peer's pid, uid and gid when it connected over a Unix socket; nil over TCP.
    public let peerCredentials: PeerCredentials?
    /// The certificate the client sent over TLS, verified by the server's client CA; nil without one.
    public let clientCertificate: ClientCertificate?
    /// Whether the request arrived on the Unix socket listener.
    public var isUnixPeer: Bool { peerCredentials != nil || remoteAddress == "unix" }
    /// When the complete request had been received.
    public let receivedAt: ContinuousClock.Instant
    /// What handlers learned about the request, for the access log.
    public let annotations: RequestAnnotations

    public init(
        requestID: String,
        peer: String,
        receivedAt: ContinuousClock.Instant = .now,
        peerCredentials: PeerCredentials? = nil,
        clientCertificate: ClientCertificate? = nil,
        annotations: RequestAnnotations = RequestAnnotations()
    ) {
        self.clientCertificate = clientCertificate
        self.requestID = requestID
        self.peer = peer
        self.remoteAddress = peer
        self.peerCredentials = peerCredentials
        self.receivedAt = receivedAt
        self.annotations = annotations
    }

    private init(copying other: RequestContext, peer: String, receivedAt: ContinuousClock.Instant) {
        requestID = other.requestID
        self.peer = peer
        remoteAddress = other.remoteAddress
        peerCredentials = other.peerCredentials
        clientCertificate = other.clientCertificate
        self.receivedAt = receivedAt
        annotations = other.annotations
    }

    /// This context with `receivedAt` set to when the body, after the head, had arrived.
    func received(at instant: ContinuousClock.Instant) -> RequestContext {
        RequestContext(copying: self, peer: peer, receivedAt: instant)
    }

    /// This context with `peer` naming `identity`; the transport peer stays in `remoteAddress`, and the
    /// annotations record `identity` as the actor.
    public func replacingPeer(_ identity: String) -> RequestContext {
        annotations.actor = identity
        return RequestContext(copying: self, peer: identity, receivedAt: receivedAt)
    }
}

/// How a handler answers.
public enum HTTPHandlerResult: Sendable {
    /// A response computed inline on the event loop thread: it must be fast and must not block.
    case response(HTTPResponse)
    /// Work run as a `Task` off the event loop. The connection waits for it; later pipelined requests on the
    /// same connection stay queued and are answered in order after it.
    case deferred(@Sendable () async -> HTTPResponse)
    /// A response whose head goes now and whose body is `stream`, written as it is sent, until it finishes or the
    /// client goes (Server-Sent Events). The response's own body is ignored; the connection closes at the end.
    case stream(HTTPResponse, ResponseStream)
}

/// What to do with a request whose head has arrived, before any of its body is read.
public enum HeadDecision: Sendable {
    /// Read the body, then call `handle(_:context:)` with this context (the one given, or a copy naming the
    /// caller). `isAuthenticated`: the caller proved who it is (a token), so it may use the connection slots kept
    /// for authenticated callers and its per-client limits are counted under `context.peer`, apart from its
    /// address.
    case proceed(RequestContext, isAuthenticated: Bool)
    /// Answer now (a refusal) without reading or buffering the body; the connection closes after the answer.
    case answer(HTTPHandlerResult)
}

/// The one thing the server calls: `admit` once a request's head is in, then `handle` once its body is.
public protocol HTTPHandler: Sendable {
    /// Decides, from the head alone (`head.body` is empty), whether the server reads the body. Runs on the event
    /// loop: it must be fast and must not block. The default proceeds, unauthenticated.
    func admit(_ head: HTTPRequest, context: RequestContext) -> HeadDecision
    func handle(_ request: HTTPRequest, context: RequestContext) -> HTTPHandlerResult
}

extension HTTPHandler {
    public func admit(_ head: HTTPRequest, context: RequestContext) -> HeadDecision {
        .proceed(context, isAuthenticated: false)
    }
}
