/// One entry of the append-only audit history.
public struct AuditEvent: Hashable, Sendable, Codable {
    public enum Outcome: String, Hashable, Sendable, Codable {
        case success
        case failure
    }

    /// Monotonic, assigned by the store.
    public var id: Int64
    /// RFC 3339 UTC with milliseconds.
    public var at: String
    /// Who: a token name, a Unix peer, the peer address (loopback without tokens), `anonymous` (a request refused
    /// without a valid token), or `reconciler`.
    public var actor: String
    /// What: `pf.vfs.set`, `allocation.create`, `allocation.release`, `hw.sysfs.write`, ...
    public var action: String
    /// On what: a PCI address or an allocation id.
    public var target: String
    public var outcome: Outcome
    public var error: String?
    public var requestID: String?
    /// JSON text with the state before and after, and anything else worth keeping.
    public var details: String

    public init(
        id: Int64 = 0, at: String, actor: String, action: String, target: String, outcome: Outcome,
        error: String? = nil, requestID: String? = nil, details: String = "{}"
    ) {
        self.id = id
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.outcome = outcome
        self.error = error
        self.requestID = requestID
        self.details = details
    }

    enum CodingKeys: String, CodingKey {
        case id
        case at
        case actor
        case action
        case target
        case outcome
        case error
        case requestID = "request_id"
        case details
    }
}
