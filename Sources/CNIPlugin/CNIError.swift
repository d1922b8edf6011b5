/// A CNI error result (SPEC.md, section 5 "Error"): printed on stdout as `{"cniVersion", "code", "msg",
/// "details"}`, with a non-zero exit status.
public struct CNIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The specification's well-known codes; 100 and above are this plugin's own.
    public enum Code: Int, Sendable {
        case incompatibleVersion = 1
        case unsupportedField = 2
        case unknownContainer = 3
        case invalidEnvironment = 4
        case ioFailure = 5
        case decodingFailure = 6
        case invalidConfig = 7
        case tryAgainLater = 11
        case notAvailable = 50
        case notAvailableLimitedConnectivity = 51
        /// sriovd refused the request for a reason that will not pass by itself (no free VF, unknown VF, ...).
        case refusedBySRIOVD = 100
        /// The netdev could not be moved, renamed or configured.
        case interfaceFailure = 101
        /// A delegated (IPAM) plugin failed; its own code is in `details`.
        case delegateFailure = 102
        /// CHECK found the attachment not as its ADD left it.
        case checkFailed = 103
    }

    public var code: Int
    public var msg: String
    public var details: String

    public init(_ code: Code, _ msg: String, details: String = "") {
        self.code = code.rawValue
        self.msg = msg
        self.details = details
    }

    public init(rawCode: Int, msg: String, details: String) {
        self.code = rawCode
        self.msg = msg
        self.details = details
    }

    public var description: String { details.isEmpty ? "\(msg) (code \(code))" : "\(msg): \(details) (code \(code))" }

    /// The error result in the version the request asked for (its shape is the same in 0.4.0, 1.0.0 and 1.1.0).
    public func document(cniVersion: String) -> JSON {
        var members: [String: JSON] = [
            "cniVersion": .string(cniVersion), "code": .number(Double(code)), "msg": .string(msg),
        ]
        if !details.isEmpty { members["details"] = .string(details) }
        return .object(members)
    }
}
