import HTTPServer

/// The authentication and authorization layer in front of the router: it finds the route a request is for,
/// decides who is asking, checks the role the policy asks for, and passes the request on with `peer` naming the
/// caller (the token's name, `uid=…,pid=…,comm=…`, or the TCP peer), which is what the audit records.
///
/// It decides at the head stage (`admit`), before the server reads or buffers the body: a refused caller gets its
/// 401 or 403 without its body being read (the server then closes a connection whose body is unread). A caller
/// with a valid token is reported authenticated, so the server counts it apart from anonymous clients of its
/// address.
///
/// Who is asking:
/// - a request with `Authorization: Bearer TOKEN`, when a tokens file is in force: the token's name and role
///   (an unknown token is 401, whatever the listener);
/// - otherwise a TLS client that sent a certificate the client CA verified: its names, mapped to a role by
///   `CertificateRoleMap` (tokens keep working over TLS, and win);
/// - otherwise a Unix-socket peer: its SO_PEERCRED credentials, mapped to a role by `UnixRoleMap`;
/// - otherwise a TCP peer: `anonymousTCPRole` when set (no tokens file, loopback only: local development),
///   else 401.
///
/// Then, without a tokens file and a client certificate, a TCP request must be addressed to loopback and come from no other web origin
/// (`LoopbackOrigin`, 403); once the role is checked, a body must be JSON (`RequestMediaType`, 415).
///
/// A refused request that may change something (any method but GET, HEAD, OPTIONS, TRACE) is reported to the
/// router's `onRefusal` before it is answered, with the actor as far as it is known (`SRIOVAPI` audits it).
public struct AccessControl: HTTPHandler {
    public let router: Router
    public let policy: AccessPolicy
    /// Nil when no tokens file is in force; Authorization headers are then ignored.
    public let tokens: TokenStore?
    public let unixRoles: UnixRoleMap
    public let certificateRoles: CertificateRoleMap
    /// The role of TCP callers without a token; nil requires a token.
    public let anonymousTCPRole: Role?

    public init(
        router: Router, policy: AccessPolicy = .sriovd, tokens: TokenStore?, unixRoles: UnixRoleMap = UnixRoleMap(),
        certificateRoles: CertificateRoleMap = CertificateRoleMap(), anonymousTCPRole: Role?
    ) {
        self.certificateRoles = certificateRoles
        self.router = router
        self.policy = policy
        self.tokens = tokens
        self.unixRoles = unixRoles
        self.anonymousTCPRole = anonymousTCPRole
    }

    /// Once the request's head is in: refuses (401, 403) a caller without the role its route needs, or passes
    /// the request on with the context naming the caller. `request` has no body yet.
    public func admit(_ request: HTTPRequest, context: RequestContext) -> HeadDecision {
        let route = router.route(for: request)
        let pattern = route?.pattern
        let required: Role
        switch policy.access(request.method, pattern) {
        case .open:
            return .proceed(context, isAuthenticated: false)
        case .role(let role):
            required = role
        }
        if let pattern { context.annotations.route = pattern }
        let identity: Identity
        switch identify(request, context: context) {
        case .success(let found):
            identity = found
        case .failure(let refusal):
            return .answer(
                refuse(request, context: context, route: route, refusal, actor: Self.unauthenticatedActor(context)))
        }
        context.annotations.actor = identity.actor
        if tokens == nil, !identity.hasCredential, !context.isUnixPeer,
            let refusal = LoopbackOrigin.refusal(for: request)
        {
            return .answer(refuse(request, context: context, route: route, refusal, actor: identity.actor))
        }
        guard let role = identity.role, role >= required else {
            let has = identity.role.map { "the role \($0)" } ?? "no role"
            let refusal = Refusal.forbidden(
                "\(request.method.rawValue) \(pattern ?? request.path) needs the role \(required); "
                    + "\(identity.actor) has \(has).",
                required: required, role: identity.role)
            return .answer(refuse(request, context: context, route: route, refusal, actor: identity.actor))
        }
        if let refusal = RequestMediaType.refusal(for: request) {
            return .answer(refuse(request, context: context, route: route, refusal, actor: identity.actor))
        }
        return .proceed(context.replacingPeer(identity.actor), isAuthenticated: identity.hasCredential)
    }

    /// Once the body is in, for a request `admit` passed on: the router answers it.
    public func handle(_ request: HTTPRequest, context: RequestContext) -> HTTPHandlerResult {
        router.handle(request, context: context)
    }

    /// Methods that change nothing (RFC 9110 §9.2.1); a refusal of any other method is reported for the audit.
    static let safeMethods: Set<HTTPMethod> = [.GET, .HEAD, .OPTIONS, HTTPMethod(rawValue: "TRACE")!]

    /// The answer to a refused request. A refused request that may change something is first reported to the
    /// router's `onRefusal` (the audit), once, without reading its body; the answer waits for that, so a
    /// connection sending refused requests gets no further than one report at a time.
    private func refuse(
        _ request: HTTPRequest, context: RequestContext, route: (pattern: String, parameters: PathParameters)?,
        _ refusal: Refusal, actor: String
    ) -> HTTPHandlerResult {
        let response = refusal.response(instance: request.path)
        guard let onRefusal = router.onRefusal, !Self.safeMethods.contains(request.method) else {
            return .response(response)
        }
        let refused = RefusedRequest(
            request: request, context: context, pattern: route?.pattern,
            parameters: route?.parameters ?? PathParameters(), actor: actor, status: refusal.status,
            reason: refusal.slug, detail: refusal.detail)
        return .deferred {
            await onRefusal(refused)
            return response
        }
    }

    /// Who a request that could not be authenticated comes from, as far as is known: the Unix-socket peer
    /// (uid, pid, comm), else `anonymous` (its transport address is `context.remoteAddress`).
    static func unauthenticatedActor(_ context: RequestContext) -> String {
        if let credentials = context.peerCredentials { return UnixRoleMap.actor(for: credentials) }
        return "anonymous"
    }

    /// Who is asking, or why the request cannot say.
    func identify(_ request: HTTPRequest, context: RequestContext) -> Result<Identity, Refusal> {
        if let tokens, let authorization = request.headers["Authorization"] {
            guard let token = Self.bearerToken(authorization) else {
                return .failure(
                    .unauthenticated("The Authorization header must be \"Bearer TOKEN\".", error: "invalid_request"))
            }
            guard let entry = tokens.authenticate(token) else {
                return .failure(.unauthenticated("The bearer token is not valid.", error: "invalid_token"))
            }
            return .success(Identity(actor: entry.name, role: entry.role, hasCredential: true))
        }
        if let certificate = context.clientCertificate {
            return .success(certificateRoles.identity(for: certificate))
        }
        if context.isUnixPeer {
            guard let credentials = context.peerCredentials else {
                return .failure(.unauthenticated("The Unix-socket peer's credentials are unknown.", error: nil))
            }
            return .success(
                Identity(actor: UnixRoleMap.actor(for: credentials), role: unixRoles.role(for: credentials)))
        }
        if let anonymousTCPRole {
            return .success(Identity(actor: context.remoteAddress, role: anonymousTCPRole))
        }
        return .failure(
            .unauthenticated("This request needs a bearer token (Authorization: Bearer TOKEN).", error: nil))
    }

    /// The token of an `Authorization: Bearer TOKEN` value (RFC 6750 §2.1; the scheme is case-insensitive).
    static func bearerToken(_ value: String) -> String? {
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingWhitespace()
        return token.isEmpty ? nil : token
    }
}

/// A request refused before it reached its route: 401 (who are you?), 403 (not allowed, or not from sriovd's own
/// origin: `LoopbackOrigin`) or 415 (a body that is not JSON: `RequestMediaType`).
struct Refusal: Error {
    var status: Int
    var slug: String
    var detail: String
    /// RFC 6750 §3.1 error code for the WWW-Authenticate challenge.
    var challengeError: String?
    var extensions: [String: ProblemValue] = [:]
    /// Header fields the answer carries besides the problem's (`Accept-Post` with a 415).
    var headers: [(name: String, value: String)] = []

    static func unauthenticated(_ detail: String, error: String?) -> Refusal {
        Refusal(status: 401, slug: "unauthenticated", detail: detail, challengeError: error)
    }

    static func forbidden(_ detail: String, required: Role, role: Role?) -> Refusal {
        var extensions: [String: ProblemValue] = ["required_role": .string(required.rawValue)]
        if let role { extensions["role"] = .string(role.rawValue) }
        return Refusal(status: 403, slug: "forbidden", detail: detail, challengeError: nil, extensions: extensions)
    }

    func response(instance: String) -> HTTPResponse {
        var response = HTTPResponse.problem(
            ProblemDetails(
                type: "urn:sriovd:problem:\(slug)", title: HTTPStatus(code: status).reason, status: status,
                detail: detail, instance: instance, extensions: extensions))
        for field in headers { response.headers.add(field.name, field.value) }
        if status == 401 {
            var challenge = "Bearer realm=\"sriovd\""
            if let challengeError { challenge += ", error=\"\(challengeError)\"" }
            response.headers.add("WWW-Authenticate", challenge)
        }
        return response
    }
}
