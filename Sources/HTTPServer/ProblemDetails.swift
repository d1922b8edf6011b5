/// An RFC 9457 problem details object. Extension members are written at the top level beside the standard
/// members; members are written with their keys sorted.
public struct ProblemDetails: Sendable, Encodable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var instance: String?
    /// Extra members (RFC 9457 §3.2). Names that clash with the standard members are ignored.
    public var extensions: [String: ProblemValue]

    public init(
        type: String = "about:blank",
        title: String,
        status: Int,
        detail: String,
        instance: String? = nil,
        extensions: [String: ProblemValue] = [:]
    ) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.extensions = extensions
    }

    /// The namespace of every problem type this server and the daemon built on it send: `<prefix><slug>`.
    public static let typePrefix = "urn:sriovd:problem:"

    static let standardKeys: Set<String> = ["type", "title", "status", "detail", "instance"]

    /// Every member, standard and extension, as one object.
    var members: [String: ProblemValue] {
        var members = extensions.filter { !ProblemDetails.standardKeys.contains($0.key) }
        members["type"] = .string(type)
        members["title"] = .string(title)
        members["status"] = .int(status)
        members["detail"] = .string(detail)
        if let instance { members["instance"] = .string(instance) }
        return members
    }

    /// The JSON text of the problem, keys sorted.
    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160)
        ProblemValue.object(members).write(into: &out)
        return out
    }

    public func encode(to encoder: any Encoder) throws {
        try ProblemValue.object(members).encode(to: encoder)
    }
}

/// A JSON value allowed in a problem's extension members.
public enum ProblemValue: Sendable, Encodable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case strings([String])
    case object([String: ProblemValue])

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .string(let value): try Self.encode(single: value, to: encoder)
        case .int(let value): try Self.encode(single: value, to: encoder)
        case .bool(let value): try Self.encode(single: value, to: encoder)
        case .strings(let values): try Self.encode(single: values, to: encoder)
        case .object(let members):
            var container = encoder.container(keyedBy: Key.self)
            for key in members.keys.sorted() {
                try container.encode(members[key]!, forKey: Key(stringValue: key))
            }
        }
    }

    private static func encode(single value: some Encodable, to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .string(let value):
            ProblemValue.writeString(value, into: &out)
        case .int(let value):
            out.append(contentsOf: String(value).utf8)
        case .bool(let value):
            out.append(contentsOf: (value ? "true" : "false").utf8)
        case .strings(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                ProblemValue.writeString(value, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                ProblemValue.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                members[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// RFC 8259 §7: quote, backslash and control characters are escaped; everything else is written as UTF-8.
    static func writeString(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(HTTPSyntax.hexDigits[Int(byte >> 4)])
                out.append(HTTPSyntax.hexDigits[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
