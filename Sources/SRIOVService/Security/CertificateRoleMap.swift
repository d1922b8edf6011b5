import HTTPServer

/// Turns a TLS client certificate (verified by `--tls-client-ca`) into a role, as a tokens file does a token.
///
/// Written as comma-separated rules, `cn:node-agent=operator,dns:ops.example.com=admin`: the kind is `cn` (the
/// subject's common name) or the kind of a subject alternative name (`dns`, `email`, `uri`, `ip`), then the name
/// exactly as the certificate holds it. A certificate gets the highest role of the rules that name any of its
/// names; one that no rule names has no role (403). Its audit actor is `cert:` and the name that granted the role
/// (`cert:cn:node-agent`), or its first name when none did.
public struct CertificateRoleMap: Sendable, Equatable {
    /// Role by name (`cn:node-agent`).
    public private(set) var roles: [String: Role] = [:]

    public init(roles: [String: Role] = [:]) {
        self.roles = roles
    }

    /// The certificate name kinds a rule may use.
    static let kinds: Set<String> = ["cn", "dns", "email", "uri", "ip"]

    /// Why a rule was refused.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var rule: String
        public var reason: String
        public var description: String { "certificate role rule \"\(rule)\": \(reason)" }
    }

    /// Parses `cn:node-agent=operator,dns:ops.example.com=admin`. Several specs (repeated options, file lines) may
    /// be joined by commas or newlines; `#` starts a comment line.
    public init(parsing spec: String) throws(ParseError) {
        let rules = spec.split(whereSeparator: { $0 == "," || $0 == "\n" })
            .map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        for rule in rules {
            guard let equals = rule.lastIndex(of: "="), let colon = rule.firstIndex(of: ":"), colon < equals,
                rule.index(after: colon) < equals
            else {
                throw ParseError(rule: rule, reason: "expected KIND:NAME=ROLE, such as cn:node-agent=operator")
            }
            guard Self.kinds.contains(String(rule[..<colon])) else {
                throw ParseError(rule: rule, reason: "the kind must be cn, dns, email, uri or ip")
            }
            guard let role = Role(rawValue: String(rule[rule.index(after: equals)...])) else {
                throw ParseError(rule: rule, reason: "the role must be reader, operator or admin")
            }
            roles[String(rule[..<equals])] = role
        }
    }

    /// Who the certificate's holder is and what it may do.
    public func identity(for certificate: ClientCertificate) -> Identity {
        let names = certificate.names
        let granted = names.compactMap { name in roles[name].map { (name: name, role: $0) } }
        guard let best = granted.max(by: { $0.role < $1.role }) else {
            return Identity(actor: "cert:" + (names.first ?? "?"), role: nil, hasCredential: true)
        }
        return Identity(actor: "cert:" + best.name, role: best.role, hasCredential: true)
    }
}
