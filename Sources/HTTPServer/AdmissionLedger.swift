/// Who a connection or a request is counted against.
enum PeerKey: Hashable, Sendable {
    /// A TCP peer that has not authenticated, by IP address.
    case address(String)
    /// A Unix-socket peer, by uid.
    case uid(UInt32)
    /// A caller the head-stage check authenticated, by the identity it named.
    case principal(String)

    /// The key of a transport peer: its uid over a Unix socket, else the address of "address:port" or
    /// "[v6]:port".
    static func of(peer: String, credentials: PeerCredentials?) -> PeerKey {
        if let credentials { return .uid(credentials.uid) }
        guard let colon = peer.lastIndex(of: ":") else { return .address(peer) }
        var host = peer[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return .address(String(host))
    }
}

/// A limit of `HTTPServerConfiguration.ClientLimits`, named for metrics and logs.
public enum LimitKind: String, CaseIterable, Sendable {
    /// All connections, or all that anonymous TCP peers may hold, are taken (503).
    case connections
    /// The peer holds as many connections as one peer may (429).
    case peerConnections = "peer_connections"
    /// The peer has as many requests in flight as one peer may (429).
    case peerRequests = "peer_requests"
    /// The peer's request bodies would exceed what one peer may have buffered (429).
    case peerBuffer = "peer_buffer"
    /// Request bodies across all connections would exceed the server's body memory (503).
    case bodyMemory = "body_memory"
    /// A head or body arrived slower than the minimum data rate allows (408).
    case slowClient = "slow_client"
}

/// Why a connection or request is refused for a limit: the status (429 or 503) and a sentence.
struct LimitRefusal: Error, Equatable, Sendable {
    var kind: LimitKind
    var detail: String

    /// 429 for a limit of one peer, 503 for one of the whole server.
    var status: HTTPStatus {
        switch kind {
        case .connections, .bodyMemory: .serviceUnavailable
        case .slowClient: .requestTimeout
        case .peerConnections, .peerRequests, .peerBuffer: .tooManyRequests
        }
    }
}

/// Which pool a connection's slot was taken from.
enum ConnectionClass: Equatable, Sendable {
    /// A Unix-socket peer: may use every slot, reserved ones included.
    case unix
    /// A TCP peer within its own limit and the anonymous pool.
    case anonymous
    /// A TCP peer admitted beyond its limit or the anonymous pool, into the reserve: its first request must
    /// authenticate, or it gets `refusal`.
    case probation(LimitRefusal)
    /// A TCP connection whose caller authenticated: counted apart from its address.
    case authenticated
}

/// The server's books of connections, requests in flight and buffered body bytes, per peer and in total, and
/// the rules that admit or refuse them. A plain value, so that it can be tested and fuzzed alone; the server keeps
/// one behind a lock shared by its event loops.
///
/// The last `reservedConnections` slots are kept for Unix-socket peers and authenticated callers: an anonymous
/// TCP peer gets a regular slot only while the anonymous pool has room and the peer is within `peerConnections`.
/// Beyond that, a TCP connection may still take a probation slot (at most half the reserve), which it keeps only
/// if its first request authenticates; so a flood from one address cannot lock out the socket or a token holder.
struct AdmissionLedger: Sendable {
    struct Usage: Equatable, Sendable {
        var connections = 0
        var inFlight = 0
        var bufferedBytes = 0

        var isEmpty: Bool { self == Usage() }
    }

    let limits: HTTPServerConfiguration.ClientLimits
    let maxConnections: Int
    private(set) var total = 0
    private(set) var anonymous = 0
    private(set) var probation = 0
    private(set) var bodyBytes = 0
    private(set) var peers: [PeerKey: Usage] = [:]

    init(limits: HTTPServerConfiguration.ClientLimits, maxConnections: Int) {
        self.limits = limits
        self.maxConnections = maxConnections
    }

    private var reserve: Int { min(limits.reservedConnections, maxConnections) }

    /// Takes a slot for a new connection from `key`, or says why not.
    mutating func openConnection(_ key: PeerKey, isUnix: Bool) -> Result<ConnectionClass, LimitRefusal> {
        guard total < maxConnections else { return .failure(Self.serverFull) }
        let usage = peers[key] ?? Usage()
        if isUnix {
            guard usage.connections < limits.peerConnections else { return .failure(Self.peerFull(limits)) }
            total += 1
            peers[key, default: Usage()].connections += 1
            return .success(.unix)
        }
        let refusal =
            usage.connections >= limits.peerConnections
            ? Self.peerFull(limits) : anonymous >= maxConnections - reserve ? Self.serverFull : nil
        if let refusal {
            guard probation < reserve / 2 else { return .failure(refusal) }
            total += 1
            probation += 1
            return .success(.probation(refusal))
        }
        total += 1
        anonymous += 1
        peers[key, default: Usage()].connections += 1
        return .success(.anonymous)
    }

    /// Moves a TCP connection whose caller authenticated out of the anonymous pool or probation.
    mutating func authenticate(_ connection: ConnectionClass, key: PeerKey) -> ConnectionClass {
        switch connection {
        case .anonymous:
            anonymous -= 1
            release(key) { $0.connections -= 1 }
            return .authenticated
        case .probation:
            probation -= 1
            return .authenticated
        case .unix, .authenticated:
            return connection
        }
    }

    /// Gives back a connection's slot.
    mutating func closeConnection(_ connection: ConnectionClass, key: PeerKey) {
        total -= 1
        switch connection {
        case .unix:
            release(key) { $0.connections -= 1 }
        case .anonymous:
            anonymous -= 1
            release(key) { $0.connections -= 1 }
        case .probation:
            probation -= 1
        case .authenticated:
            break
        }
    }

    /// Counts a request in flight for `key` with `bodyBytes` of body to buffer, or says why not.
    mutating func beginRequest(_ key: PeerKey, bodyBytes body: Int) -> LimitRefusal? {
        let usage = peers[key] ?? Usage()
        if usage.inFlight >= limits.peerRequests {
            return LimitRefusal(
                kind: .peerRequests, detail: "This client has \(limits.peerRequests) requests in progress already.")
        }
        if usage.bufferedBytes + body > limits.peerBufferedBytes {
            return LimitRefusal(
                kind: .peerBuffer,
                detail: "This client's request bodies in progress would exceed \(limits.peerBufferedBytes) bytes.")
        }
        if bodyBytes + body > limits.bodyMemory {
            return LimitRefusal(
                kind: .bodyMemory, detail: "The server is buffering as many request bodies as it may; retry shortly.")
        }
        bodyBytes += body
        peers[key, default: Usage()].inFlight += 1
        peers[key, default: Usage()].bufferedBytes += body
        return nil
    }

    /// Ends a request counted by `beginRequest`.
    mutating func endRequest(_ key: PeerKey, bodyBytes body: Int) {
        bodyBytes -= body
        release(key) { usage in
            usage.inFlight -= 1
            usage.bufferedBytes -= body
        }
    }

    private mutating func release(_ key: PeerKey, _ change: (inout Usage) -> Void) {
        guard var usage = peers[key] else { return }
        change(&usage)
        peers[key] = usage.isEmpty ? nil : usage
    }

    static let serverFull = LimitRefusal(
        kind: .connections, detail: "The server has as many open connections as it may; retry shortly.")

    static func peerFull(_ limits: HTTPServerConfiguration.ClientLimits) -> LimitRefusal {
        LimitRefusal(
            kind: .peerConnections, detail: "This client has \(limits.peerConnections) connections open already.")
    }
}
