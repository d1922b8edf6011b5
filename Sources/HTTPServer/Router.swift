/// Values captured from `{name}` segments of a route pattern, raw (not percent-decoded).
public struct PathParameters: Sendable {
    private var values: [(name: String, value: String)]

    public init(_ values: [String: String] = [:]) {
        self.values = values.map { (name: $0.key, value: $0.value) }
    }

    init(pairs: [(name: String, value: String)]) { values = pairs }

    public subscript(_ name: String) -> String? {
        values.first { $0.name == name }?.value
    }
}

/// Dispatches on method and path. Patterns are `/`-separated segments, each a literal or a `{name}` capture of
/// one whole segment. A path that matches no pattern gets 404; a path that matches but not for this method gets
/// 405 with `Allow`. HEAD runs the GET handler where no HEAD handler is registered (the server drops the body).
public struct Router: HTTPHandler {
    public typealias Handler = @Sendable (HTTPRequest, RequestContext, PathParameters) -> HTTPHandlerResult

    private enum Segment: Sendable, Equatable {
        case literal(String)
        case capture(String)
    }

    private struct Route: Sendable {
        var pattern: String
        var segments: [Segment]
        var handlers: [HTTPMethod: Handler]
    }

    /// Routes ordered so that, for the same number of segments, a literal segment is tried before a capture.
    private var routes: [Route] = []

    /// Told of requests that a handler in front of this router (an access check) refuses before they reach a
    /// route, so that the application that built the routes can record them. The front handler decides which
    /// refusals it reports, and its answer waits until this returns. Nil: nobody is told.
    public var onRefusal: (@Sendable (RefusedRequest) async -> Void)?

    public init() {}

    /// Registers `handler` for `method` on `pattern`. Registering the same method and pattern again replaces it.
    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping Handler) {
        if let index = routes.firstIndex(where: { $0.pattern == pattern }) {
            routes[index].handlers[method] = handler
            return
        }
        let segments: [Segment] = Router.segments(of: pattern).map { part in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                return .capture(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
        routes.append(Route(pattern: pattern, segments: segments, handlers: [method: handler]))
        routes.sort { lhs, rhs in
            for (left, right) in zip(lhs.segments, rhs.segments) {
                switch (left, right) {
                case (.literal, .capture): return true
                case (.capture, .literal): return false
                default: continue
                }
            }
            return false
        }
    }

    private static func segments(of path: some StringProtocol) -> [Substring] {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).map { Substring($0) }
        if parts.first == "" { parts.removeFirst() }
        if parts == [""] { parts = [] }
        return parts
    }

    /// Every registered method and pattern, sorted by pattern then method (for policy checks and docs).
    public var registeredRoutes: [(method: HTTPMethod, pattern: String)] {
        routes.flatMap { route in route.handlers.keys.map { (method: $0, pattern: route.pattern) } }
            .sorted { ($0.pattern, $0.method.rawValue) < ($1.pattern, $1.method.rawValue) }
    }

    private enum Match {
        case found(pattern: String, handler: Handler, parameters: PathParameters)
        case methodNotAllowed(pattern: String, allowed: Set<HTTPMethod>)
        case notFound
    }

    private func match(_ request: HTTPRequest) -> Match {
        let parts = Router.segments(of: request.path)
        var allowed: Set<HTTPMethod> = []
        var firstPattern: String?
        for route in routes where route.segments.count == parts.count {
            var captures: [(name: String, value: String)] = []
            var matches = true
            for (segment, part) in zip(route.segments, parts) {
                switch segment {
                case .literal(let literal):
                    if literal != part { matches = false }
                case .capture(let name):
                    if part.isEmpty { matches = false } else { captures.append((name: name, value: String(part))) }
                }
                if !matches { break }
            }
            guard matches else { continue }
            if firstPattern == nil { firstPattern = route.pattern }
            if let handler = route.handlers[request.method]
                ?? (request.method == .HEAD ? route.handlers[.GET] : nil)
            {
                return .found(pattern: route.pattern, handler: handler, parameters: PathParameters(pairs: captures))
            }
            allowed.formUnion(route.handlers.keys)
        }
        guard let firstPattern else { return .notFound }
        return .methodNotAllowed(pattern: firstPattern, allowed: allowed)
    }

    /// The pattern of the route that would handle `request` (`/pfs/{address}`), or nil when the path matches no
    /// route or the method is not allowed on it. A handler in front of the router uses it to decide by route.
    public func pattern(for request: HTTPRequest) -> String? {
        route(for: request)?.pattern
    }

    /// The pattern of the route that would handle `request` and the parameters it would get, or nil as for
    /// `pattern(for:)`.
    public func route(for request: HTTPRequest) -> (pattern: String, parameters: PathParameters)? {
        if case .found(let pattern, _, let parameters) = match(request) { return (pattern, parameters) }
        return nil
    }

    /// Dispatches `request`, and records the matched pattern in `context.annotations.route` (also for 405).
    public func handle(_ request: HTTPRequest, context: RequestContext) -> HTTPHandlerResult {
        var allowed: Set<HTTPMethod>
        switch match(request) {
        case .found(let pattern, let handler, let parameters):
            context.annotations.route = pattern
            return handler(request, context, parameters)
        case .notFound:
            return .response(
                .serverProblem(.notFound, detail: "No resource at \(request.path).", instance: request.path)
            )
        case .methodNotAllowed(let pattern, let methods):
            context.annotations.route = pattern
            allowed = methods
        }
        if allowed.contains(.GET) { allowed.insert(.HEAD) }
        let allow = allowed.map(\.rawValue).sorted().joined(separator: ", ")
        var response = HTTPResponse.serverProblem(
            .methodNotAllowed,
            detail: "\(request.method.rawValue) is not allowed on \(request.path); allowed: \(allow).",
            instance: request.path
        )
        response.headers.add("Allow", allow)
        return .response(response)
    }
}

/// A request that a handler in front of the router refused before it reached a route (`Router.onRefusal`).
public struct RefusedRequest: Sendable {
    public var request: HTTPRequest
    public var context: RequestContext
    /// The route the request was for, and its parameters, when it matches one.
    public var pattern: String?
    public var parameters: PathParameters
    /// Who asked, as far as the refusing handler could tell.
    public var actor: String
    /// The status of the answer (401, 403), a short machine-readable reason and a sentence.
    public var status: Int
    public var reason: String
    public var detail: String

    public init(
        request: HTTPRequest, context: RequestContext, pattern: String?, parameters: PathParameters, actor: String,
        status: Int, reason: String, detail: String
    ) {
        self.request = request
        self.context = context
        self.pattern = pattern
        self.parameters = parameters
        self.actor = actor
        self.status = status
        self.reason = reason
        self.detail = detail
    }
}
