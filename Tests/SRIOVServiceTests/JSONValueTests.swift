import Foundation
import Testing

@testable import SRIOVService

@Suite struct JSONValueTests {
    @Test func writesTextThatParsesBackToTheSameValue() throws {
        let value = JSONValue.object([
            "quote\"back\\slash": .string("line\nfeed\ttab\u{01}\u{1f} é ✓"), "n": .int(-42), "x": .number(1.5),
            "list": .array([.bool(true), .null, .object([:])]), "b": .bool(false),
        ])
        let text = value.text
        #expect(try JSONValue.parse(text) == value)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["quote\"back\\slash"] as? String == "line\nfeed\ttab\u{01}\u{1f} é ✓")
        #expect(text.hasPrefix("{\"b\":false,"), "keys are sorted")
    }
}
