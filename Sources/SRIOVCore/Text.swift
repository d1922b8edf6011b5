/// Small text helpers the standard library lacks (the product keeps to FoundationEssentials).
extension StringProtocol {
    /// The text without leading and trailing whitespace (spaces, tabs, newlines).
    public func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
            let last = lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }

    /// The text followed by spaces up to `width` characters (as it is when already that long), for columns.
    public func padded(toWidth width: Int) -> String {
        String(self) + String(repeating: " ", count: Swift.max(0, width - count))
    }
}

extension Sequence<UInt8> {
    /// The bytes as lower-case hex, two digits each.
    public var lowercaseHex: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension BinaryInteger {
    /// The number in `radix` (lower-case digits), with leading zeros up to `width` digits: `7.zeroPadded(toWidth: 3)`
    /// is `007`. A wider number is written whole.
    public func zeroPadded(toWidth width: Int, radix: Int = 10) -> String {
        let digits = String(self, radix: radix)
        return String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits
    }
}

extension String {
    /// Appends the text in double quotes, escaped as a JSON string (RFC 8259 §7): `"`, `\`, newline, return and tab
    /// with a backslash, other control characters as `\u00XX`. logfmt quotes values the same way and also escapes
    /// DEL (`escapingDelete`).
    public func appendQuoted(to out: inout String, escapingDelete: Bool = false) {
        out += "\""
        for scalar in unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || (escapingDelete && scalar.value == 0x7f):
                out += "\\u" + scalar.value.zeroPadded(toWidth: 4, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
