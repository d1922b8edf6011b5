import FoundationEssentials
import Glibc
import HTTPServer
import SRIOVCore

/// Encoding of responses and strict decoding of request bodies.
enum JSONBody {
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every wire type is plain data; encoding cannot fail.
        return Array(try! encoder.encode(value))
    }

    static func ok(_ value: some Encodable, status: HTTPStatus = .ok) -> HTTPResponse {
        .json(status, encode(value))
    }

    /// Decodes a request body, turning every decoding failure into a domain error that names the field:
    /// syntax errors are 400 (`malformedBody`), wrong types, missing and unknown fields are 422 (`invalidField`).
    static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(SRIOVError) -> T {
        guard !body.isEmpty else { throw .malformedBody("a JSON object is required") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch let error as SRIOVError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw .invalidField(path(context.codingPath + [key]), "is required")
        } catch let DecodingError.typeMismatch(expected, context) {
            throw .invalidField(path(context.codingPath), "must be \(describe(expected))")
        } catch let DecodingError.valueNotFound(expected, context) {
            throw .invalidField(path(context.codingPath), "must be \(describe(expected)), not null")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw .invalidField(path(context.codingPath), context.debugDescription)
        } catch {
            throw .malformedBody("not valid JSON")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        var path = ""
        for key in keys {
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path += (path.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return path
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is String.Type: "a string"
        default: "of the documented type"
        }
    }
}

/// A coding key for any name, used to reject fields a body type does not know.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws `invalidField` for the first key not in `known` (typos such as `cont` must not pass silently).
    func rejectUnknownKeys(_ known: Set<String>, prefix: String = "") throws {
        let container = try container(keyedBy: AnyCodingKey.self)
        let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
        if let first = unknown.first {
            throw SRIOVError.invalidField(prefix + first, "is not a known field")
        }
    }
}
