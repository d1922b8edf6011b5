/// An HTTP request method (RFC 9110 §9). Any token is a valid method; the common ones are static members.
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Accepts a method name only if it is a non-empty `token` (RFC 9110 §9.1, §5.6.2). Methods are case-sensitive.
    public init?(rawValue: String) {
        guard !rawValue.isEmpty, rawValue.utf8.allSatisfy(HTTPSyntax.isTokenChar) else { return nil }
        self.rawValue = rawValue
    }

    private init(unchecked: String) { rawValue = unchecked }

    // The method names are case-sensitive tokens (RFC 9110 §9.1), so the members keep their spelling.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let GET = HTTPMethod(unchecked: "GET")
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let HEAD = HTTPMethod(unchecked: "HEAD")
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let POST = HTTPMethod(unchecked: "POST")
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let PUT = HTTPMethod(unchecked: "PUT")
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let PATCH = HTTPMethod(unchecked: "PATCH")
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let DELETE = HTTPMethod(unchecked: "DELETE")
    // swift-format-ignore: AlwaysUseLowerCamelCase
    public static let OPTIONS = HTTPMethod(unchecked: "OPTIONS")

    public var description: String { rawValue }

    /// Builds a method from bytes already checked to be token characters, reusing the static members for the
    /// common methods so the hot path does not allocate.
    static func make(validatedBytes bytes: UnsafeBufferPointer<UInt8>) -> HTTPMethod {
        switch bytes.count {
        case 3:
            if HTTPSyntax.equals(bytes, "GET") { return .GET }
            if HTTPSyntax.equals(bytes, "PUT") { return .PUT }
        case 4:
            if HTTPSyntax.equals(bytes, "HEAD") { return .HEAD }
            if HTTPSyntax.equals(bytes, "POST") { return .POST }
        case 5:
            if HTTPSyntax.equals(bytes, "PATCH") { return .PATCH }
        case 6:
            if HTTPSyntax.equals(bytes, "DELETE") { return .DELETE }
        case 7:
            if HTTPSyntax.equals(bytes, "OPTIONS") { return .OPTIONS }
        default:
            break
        }
        return HTTPMethod(unchecked: String(decoding: bytes, as: UTF8.self))
    }
}

/// The protocol version of a request. Only HTTP/1.0 and HTTP/1.1 are served.
public struct HTTPVersion: Hashable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let http10 = HTTPVersion(major: 1, minor: 0)
    public static let http11 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }
}
