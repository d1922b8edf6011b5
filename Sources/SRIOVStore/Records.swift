import SRIOVCore

/// Which allocations to list. Every set field must match; nil matches anything.
public struct AllocationFilter: Hashable, Sendable {
    /// The largest page a caller can ask for.
    public static let maximumLimit = 500

    /// Exactly this state; nil lists every state.
    public var state: AllocationState?
    public var owner: String?
    public var pf: PCIAddress?
    /// The `nextCursor` of the previous page; nil starts at the beginning.
    public var cursor: String?
    /// Page size, clamped to 1...500.
    public var limit: Int

    public init(
        state: AllocationState? = nil, owner: String? = nil, pf: PCIAddress? = nil, cursor: String? = nil,
        limit: Int = 100
    ) {
        self.state = state
        self.owner = owner
        self.pf = pf
        self.cursor = cursor
        self.limit = limit
    }
}

/// One page of allocations, ordered by creation.
public struct AllocationPage: Hashable, Sendable {
    public var items: [Allocation]
    /// The cursor of the next page (pass as `AllocationFilter.cursor`); nil on the last page.
    public var next: String?
}

/// Which audit events to list, in ascending id order. Every set field must match; nil matches anything.
public struct AuditFilter: Hashable, Sendable {
    public static let maximumLimit = 500

    public var target: String?
    public var action: String?
    public var actor: String?
    /// Events at or after this RFC 3339 time (any offset; compared in UTC).
    public var since: String?
    /// Events at or before this RFC 3339 time.
    public var until: String?
    /// Events with an id greater than this: the last id of the previous page.
    public var after: Int64?
    /// Page size, clamped to 1...500.
    public var limit: Int

    public init(
        target: String? = nil, action: String? = nil, actor: String? = nil, since: String? = nil,
        until: String? = nil, after: Int64? = nil, limit: Int = 100
    ) {
        self.target = target
        self.action = action
        self.actor = actor
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
    }
}

/// A PF as the store remembers it.
public struct StoredPF: Hashable, Sendable {
    public var address: PCIAddress
    public var vendorID: String
    public var deviceID: String
    /// The VF count an operator asked for; nil when never set.
    public var desiredVFs: Int?
    public var firstSeen: String
    public var lastSeen: String
}

/// The stored response to a request that carried an Idempotency-Key.
public struct IdempotencyRecord: Hashable, Sendable {
    /// How long records are kept at least.
    public static let retentionMilliseconds: Int64 = 24 * 60 * 60 * 1000

    /// One more response header, in order.
    public struct Header: Hashable, Sendable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public var key: String
    /// A hash of the request (method, path, body) that tells a retry from a reuse of the key.
    public var requestHash: String
    /// The HTTP status of the stored response.
    public var status: Int
    /// The response body.
    public var body: [UInt8]
    /// The `Location` header of the response, if it had one.
    public var location: String?
    /// Any other response headers worth replaying, in order.
    public var headers: [Header]
    public var createdAt: String

    public init(
        key: String, requestHash: String, status: Int, body: [UInt8], location: String? = nil,
        headers: [Header] = [], createdAt: String
    ) {
        self.key = key
        self.requestHash = requestHash
        self.status = status
        self.body = body
        self.location = location
        self.headers = headers
        self.createdAt = createdAt
    }
}

/// A hardware change announced before it is made, so that a crash in the middle is noticed at next start.
public struct Intent: Hashable, Sendable {
    /// How an intent ended.
    public enum Outcome: String, Hashable, Sendable {
        /// The change was made.
        case completed
        /// The change was undone or never made.
        case rolledBack = "rolled_back"
    }

    public var id: Int64
    /// What is about to happen.
    public var kind: IntentKind
    /// On what: a PCI address or an allocation id.
    public var target: String
    /// JSON text with what is needed to finish or undo it.
    public var payload: String
    public var createdAt: String
    /// nil while the intent is open.
    public var completedAt: String?
    public var outcome: Outcome?
}

/// The kinds of change an intent announces. Stored as their raw value; recovery at startup switches over them.
public enum IntentKind: String, CaseIterable, Hashable, Sendable {
    /// `sriov_numvfs` (and `sriov_drivers_autoprobe`) of a PF set; the target is the PF.
    case vfCount = "pf.vfs.set"
    /// An allocation's config applied to its VF; the target is the allocation.
    case allocationApply = "allocation.apply"
    /// A released allocation's VF restored to its baseline; the target is the allocation.
    case allocationRelease = "allocation.release"
    /// A held VF's settings changed; the target is the allocation.
    case allocationUpdate = "allocation.update"
    /// A free VF's settings changed, which become its baseline; the target is the VF.
    case vfUpdate = "vf.update"
    /// Reconciliation re-applying an allocation's settings to its VF; the target is the allocation.
    case allocationReapply = "allocation.reapply"
    /// An allocation moved to a VF of another PF (or another VF of the same PF); the target is the allocation,
    /// the payload names both VFs and the state each returns to.
    case allocationMove = "allocation.move"
}
