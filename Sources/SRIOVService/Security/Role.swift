import HTTPServer

/// What a caller may do. Each role may do everything the roles below it may.
public enum Role: String, Sendable, Hashable, CaseIterable, Comparable, CustomStringConvertible {
    /// Every GET.
    case reader
    /// Allocations, and the VF settings of VFs held by an allocation.
    case `operator`
    /// VF counts, the settings of free VFs, reconcile.
    case admin

    private var rank: Int {
        switch self {
        case .reader: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    public var description: String { rawValue }
}

/// Who may call a route: anyone (no credentials at all), or a caller holding at least a role.
public enum Access: Sendable, Equatable {
    case open
    case role(Role)
}

/// The access policy: the least role each route needs, by method and route pattern (as registered with the
/// `Router`, e.g. `/pfs/{address}/vfs`). The table is the whole policy; routes stay unaware of it.
public struct AccessPolicy: Sendable {
    private var rules: [String: Access]

    /// The rules as `(method, pattern, access)`.
    public init(_ rules: [(HTTPMethod, String, Access)]) {
        self.rules = [:]
        for (method, pattern, access) in rules { self.rules[Self.key(method, pattern)] = access }
    }

    private static func key(_ method: HTTPMethod, _ pattern: String) -> String { method.rawValue + " " + pattern }

    /// The access `method` on `pattern` needs. A route missing from the table needs `reader` for GET and HEAD
    /// and `admin` for anything else, so a route added later is never open by accident. A request that matches
    /// no route (404, 405) needs `reader`: anonymous callers learn nothing about which paths exist.
    public func access(_ method: HTTPMethod, _ pattern: String?) -> Access {
        let method = method == .HEAD ? .GET : method
        guard let pattern else { return .role(.reader) }
        if let access = rules[Self.key(method, pattern)] { return access }
        return method == .GET ? .role(.reader) : .role(.admin)
    }

    /// Every rule, for documentation and tests.
    public var entries: [(method: String, pattern: String, access: Access)] {
        rules.map { key, access in
            let space = key.firstIndex(of: " ")!
            return (String(key[..<space]), String(key[key.index(after: space)...]), access)
        }.sorted { ($0.pattern, $0.method) < ($1.pattern, $1.method) }
    }

    /// sriovd's policy. Probes (`/healthz`, `/readyz`) are open: kubelet and systemd carry no token; so are the
    /// dashboard's static files (`/ui/`).
    public static let sriovd = AccessPolicy([
        (.GET, "/healthz", .open),
        (.GET, "/readyz", .open),
        (.GET, "/openapi.yaml", .role(.reader)),
        (.GET, "/metrics", .role(.reader)),
        (.GET, "/pfs", .role(.reader)),
        (.GET, "/pfs/{address}", .role(.reader)),
        (.GET, "/pfs/{address}/vfs", .role(.reader)),
        (.POST, "/pfs/{address}/vfs", .role(.admin)),
        (.DELETE, "/pfs/{address}/vfs", .role(.admin)),
        (.GET, "/vfs", .role(.reader)),
        (.GET, "/vfs/{address}", .role(.reader)),
        // Settings of a free VF are the admin's; a held VF's settings go through its allocation (operator).
        (.PATCH, "/vfs/{address}", .role(.admin)),
        (.GET, "/allocations", .role(.reader)),
        (.POST, "/allocations", .role(.operator)),
        (.GET, "/allocations/{id}", .role(.reader)),
        (.PATCH, "/allocations/{id}", .role(.operator)),
        (.DELETE, "/allocations/{id}", .role(.operator)),
        (.POST, "/allocations/{id}/renew", .role(.operator)),
        (.POST, "/allocations/{id}/move", .role(.operator)),
        (.GET, "/allocations/{id}/identity", .role(.reader)),
        (.POST, "/pfs/{address}/cordon", .role(.admin)),
        (.DELETE, "/pfs/{address}/cordon", .role(.admin)),
        (.POST, "/pfs/{address}/drain", .role(.admin)),
        (.PUT, "/pfs/{address}/managed", .role(.admin)),
        (.GET, "/capacity", .role(.reader)),
        (.GET, "/quotas", .role(.reader)),
        (.PUT, "/quotas/{owner_prefix}", .role(.admin)),
        (.DELETE, "/quotas/{owner_prefix}", .role(.admin)),
        // Where the holder moved the VF's netdev (the CNI plugin records it).
        (.PUT, "/allocations/{id}/attachment", .role(.operator)),
        (.DELETE, "/allocations/{id}/attachment", .role(.operator)),
        // Docker networks of the sriovd driver and their endpoints; releasing one Docker no longer has is the admin's.
        (.GET, "/docker/networks", .role(.reader)),
        (.DELETE, "/docker/networks/{network}/endpoints/{endpoint}", .role(.admin)),
        (.GET, "/audit", .role(.reader)),
        (.GET, "/reconcile", .role(.reader)),
        (.POST, "/reconcile", .role(.admin)),
        (.GET, "/events", .role(.reader)),
        (.GET, "/operations", .role(.reader)),
        (.GET, "/operations/{id}", .role(.reader)),
        // The dashboard's files hold no data: a browser loads them before it has a token to send. Every request
        // the page makes for data needs the role of the route it calls.
        (.GET, "/ui", .open),
        (.GET, "/ui/", .open),
        (.GET, "/ui/{file}", .open),
    ])
}
