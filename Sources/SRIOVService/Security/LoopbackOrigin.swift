import Glibc
import HTTPServer
import SRIOVCore

/// The defence of tokenless loopback mode against web pages. Without a tokens file every TCP caller on loopback is
/// admin, so a browser on the same host must not be able to act for its user:
/// - DNS rebinding: a page at `evil.example` whose name is made to resolve to 127.0.0.1 sends requests that reach
///   sriovd with `Host: evil.example:8080`. Only a Host that is a loopback name or address is answered:
///   `localhost`, an IPv4 address in 127.0.0.0/8 written as four decimal numbers, or `[::1]` (any spelling of the
///   IPv6 loopback address), each with any port or none. A request without Host (HTTP/1.0) is not refused.
/// - Cross-site requests: a browser sends `Origin` with every cross-origin request and with every POST, PATCH and
///   DELETE. An `Origin` is accepted only when it is sriovd's own: `http`, and the same host and port as `Host`
///   (port 80 when one leaves it out). `Origin: null` (a sandboxed or file page) is refused.
///
/// Token-authenticated and Unix-socket callers are not checked: a page cannot attach a bearer token to a
/// cross-site request without CORS, which sriovd does not offer, and cannot reach a Unix socket.
enum LoopbackOrigin {
    /// Why a request to tokenless loopback TCP is refused (403), or nil when it may go on.
    static func refusal(for request: HTTPRequest) -> Refusal? {
        guard let hostValue = request.headers["Host"] else { return nil }
        guard let host = Authority(hostValue), host.isLoopback else {
            return Refusal(
                status: 403, slug: "non-loopback-host",
                detail: "Host: \(hostValue) is not a loopback name or address (localhost, 127.0.0.1, [::1]). Without "
                    + "a tokens file sriovd answers only requests addressed to loopback, so that a web page whose "
                    + "name was made to resolve to this host (DNS rebinding) cannot use it.",
                challengeError: nil)
        }
        let origins = request.headers.values(for: "Origin")
        guard let origin = origins.first else { return nil }
        guard origins.count == 1, isOwnOrigin(origin, host: host) else {
            return Refusal(
                status: 403, slug: "cross-origin-request",
                detail: "Origin: \(origin) is not sriovd's own origin (http://\(hostValue)). Without a tokens file "
                    + "sriovd refuses requests made by web pages of other origins.",
                challengeError: nil)
        }
        return nil
    }

    /// Whether `origin` (RFC 6454 §7: `scheme://host[:port]`, or `null`) is `http://` with `host`'s host and port.
    static func isOwnOrigin(_ origin: String, host: Authority) -> Bool {
        let scheme = "http://"
        guard origin.count > scheme.count, origin.prefix(scheme.count).lowercased() == scheme,
            let authority = Authority(origin.dropFirst(scheme.count))
        else { return false }
        return authority.host == host.host && authority.effectivePort == host.effectivePort
    }

    /// The host and port of a `Host` field value or an origin's authority (RFC 9110 §7.2): a name or IPv4 address,
    /// or an IPv6 address in brackets, then `:PORT` or nothing. The host is kept in lower case.
    struct Authority: Equatable {
        var host: String
        var port: Int?

        /// Port 80 when none is given: an `http` origin and a Host without a port both mean 80.
        var effectivePort: Int { port ?? 80 }

        init?(_ text: some StringProtocol) {
            let text = Substring(text)
            let hostEnd: Substring.Index
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                hostEnd = text.index(after: close)
            } else {
                hostEnd = text.firstIndex(of: ":") ?? text.endIndex
            }
            guard hostEnd > text.startIndex else { return nil }
            let rest = text[hostEnd...]
            if rest.isEmpty {
                port = nil
            } else {
                guard let port = Self.port(rest) else { return nil }
                self.port = port
            }
            host = text[..<hostEnd].lowercased()
        }

        /// The port of `:PORT`, 1 to 5 digits up to 65535; nil for anything else.
        private static func port(_ text: Substring) -> Int? {
            let digits = text.dropFirst()
            guard text.first == ":", (1...5).contains(digits.count), digits.allSatisfy(\.isASCIIDigit),
                let value = Int(digits), value <= 65535
            else { return nil }
            return value
        }

        /// `localhost`, a dotted-quad IPv4 address in 127.0.0.0/8, or the IPv6 loopback address in brackets.
        var isLoopback: Bool {
            if host == "localhost" { return true }
            if host.hasPrefix("[") && host.hasSuffix("]") {
                var address = in6_addr()
                guard inet_pton(AF_INET6, String(host.dropFirst().dropLast()), &address) == 1 else { return false }
                return withUnsafeBytes(of: &address) { $0.elementsEqual([UInt8](repeating: 0, count: 15) + [1]) }
            }
            var address = in_addr()
            guard inet_pton(AF_INET, host, &address) == 1 else { return false }
            return UInt32(bigEndian: address.s_addr) >> 24 == 127
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
