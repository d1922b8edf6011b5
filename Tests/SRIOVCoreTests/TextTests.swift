import SRIOVCore
import Testing

@Suite struct TextTests {
    @Test(arguments: [
        ("  a b \t\n", "a b"), ("", ""), (" \n\t ", ""), ("x", "x"), ("\tline one\nline two  ", "line one\nline two"),
    ])
    func trimmingWhitespace(text: String, expected: String) {
        #expect(text.trimmingWhitespace() == expected)
    }

    @Test func paddedKeepsLongTextWhole() {
        #expect("ok".padded(toWidth: 5) == "ok   ")
        #expect("exactly".padded(toWidth: 7) == "exactly")
        #expect("longer than".padded(toWidth: 3) == "longer than")
    }

    @Test func lowercaseHexHasTwoDigitsPerByte() {
        #expect([UInt8]().lowercaseHex == "")
        #expect([0x00, 0x0f, 0xa0, 0xff].lowercaseHex == "000fa0ff")
    }
}
