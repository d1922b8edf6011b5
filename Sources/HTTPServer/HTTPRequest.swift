/// A parsed request, complete with its body.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The request-target exactly as received (RFC 9112 §3.2).
    public var target: String
    /// The target's path: the part before `?` (for absolute-form, the path after the authority). Not
    /// percent-decoded.
    public var path: String
    /// The query's name/value pairs, percent-decoded, `+` read as a space, in order.
    public var query: [(name: String, value: String)]
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]

    /// Builds a request; `path` and `query` are derived from `target`.
    public init(
        method: HTTPMethod,
        target: String,
        version: HTTPVersion = .http11,
        headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = []
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        (path, query) = HTTPRequest.split(target: target)
    }

    /// The first query value named `name`, or nil.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    static func split(target: String) -> (path: String, query: [(name: String, value: String)]) {
        var rest = Substring(target)
        var isWholeTarget = true
        // RFC 9112 §3.2.2: absolute-form; the path starts after the authority.
        if rest.utf8.first != UInt8(ascii: "/"), rest != "*", let schemeEnd = HTTPRequest.endOfScheme(rest) {
            isWholeTarget = false
            let afterAuthority = rest[schemeEnd...]
            if let slash = afterAuthority.utf8.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
            {
                rest = afterAuthority[slash...]
            } else {
                rest = ""
            }
            if rest.isEmpty || rest.utf8.first == UInt8(ascii: "?") { rest = "/" + rest }
        }
        guard let mark = rest.utf8.firstIndex(of: UInt8(ascii: "?")) else {
            return (isWholeTarget ? target : String(rest), [])
        }
        let path = String(rest[..<mark])
        let queryText = rest[rest.index(after: mark)...]
        var query: [(name: String, value: String)] = []
        for pair in queryText.split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = pair.utf8.firstIndex(of: UInt8(ascii: "=")) {
                query.append(
                    (
                        name: percentDecode(pair[..<equals]),
                        value: percentDecode(pair[pair.index(after: equals)...])
                    )
                )
            } else {
                query.append((name: percentDecode(pair), value: ""))
            }
        }
        return (path, query)
    }

    /// The index after "://" in an absolute-form target.
    static func endOfScheme(_ text: Substring) -> Substring.Index? {
        var index = text.startIndex
        while index < text.endIndex {
            if text[index...].hasPrefix("://") { return text.index(index, offsetBy: 3) }
            if text[index] == "/" || text[index] == "?" { return nil }
            index = text.index(after: index)
        }
        return nil
    }

    /// A path segment with its `%XX` escapes decoded (`+` stays `+`); malformed escapes are kept as they are.
    public static func percentDecodedPathSegment(_ segment: some StringProtocol) -> String {
        percentDecode(Substring(segment), plusIsSpace: false)
    }

    /// Decodes `%XX` escapes and, in a query, `+` as a space (application/x-www-form-urlencoded); malformed escapes
    /// are kept as they are.
    static func percentDecode(_ text: Substring, plusIsSpace: Bool = true) -> String {
        let utf8 = Array(text.utf8)
        if !utf8.contains(UInt8(ascii: "%")) && !(plusIsSpace && utf8.contains(UInt8(ascii: "+"))) {
            return String(text)
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            if plusIsSpace && byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < utf8.count, let high = hexValue(utf8[index + 1]),
                let low = hexValue(utf8[index + 2])
            {
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
