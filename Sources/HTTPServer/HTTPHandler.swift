/// What the server knows about the request besides its bytes.
public struct RequestContext: Sendable {
    /// The request's id: the client's `X-Request-Id` when it sent a sane one, otherwise generated. It is sent
    /// back in the response's `X-Request-Id`.
    public let requestID: String
    /// The peer as "address:port" ("[::1]:5555" for IPv6), or "unix".
    public let peer: String
    /// When the complete request had been received.
    public let receivedAt: ContinuousClock.Instant

    public init(requestID: String, peer: String, receivedAt: ContinuousClock.Instant = .now) {
        self.requestID = requestID
        self.peer = peer
        self.receivedAt = receivedAt
    }
}

/// How a handler answers.
public enum HTTPHandlerResult: Sendable {
    /// A response computed inline on the event loop thread: it must be fast and must not block.
    case response(HTTPResponse)
    /// Work run as a `Task` off the event loop. The connection waits for it; later pipelined requests on the
    /// same connection stay queued and are answered in order after it.
    case deferred(@Sendable () async -> HTTPResponse)
}

/// The one thing the server calls.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, context: RequestContext) -> HTTPHandlerResult
}
