import Glibc
import SRIOVCore

/// logfmt written straight into a byte buffer, field by field, without a `String` per field: what the access log
/// does for every request. Values are written as `LogfmtLogHandler.quote` writes them, so a line reads the same
/// whichever wrote it.
enum LogfmtBytes {
    /// Appends ` key=value`.
    static func appendField(_ key: StaticString, _ value: String, to out: inout [UInt8]) {
        appendKey(key, to: &out)
        appendValue(value, to: &out)
    }

    /// Appends ` key=N` with `value` in decimal.
    static func appendField(_ key: StaticString, decimal value: Int, to out: inout [UInt8]) {
        appendKey(key, to: &out)
        appendDecimal(value, to: &out)
    }

    /// Appends ` key=`.
    static func appendKey(_ key: StaticString, to out: inout [UInt8]) {
        out.append(UInt8(ascii: " "))
        key.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "="))
    }

    /// Appends `value` bare when it is a plain token (no space, control character, `"`, `=` or `\`), otherwise
    /// in double quotes with `"`, `\` and control characters escaped.
    static func appendValue(_ value: String, to out: inout [UInt8]) {
        let appended: Void? = value.utf8.withContiguousStorageIfAvailable { bytes in
            appendValue(bytes, to: &out)
        }
        if appended == nil { Array(value.utf8).withUnsafeBufferPointer { appendValue($0, to: &out) } }
    }

    private static func appendValue(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        if !bytes.isEmpty && bytes.allSatisfy(isPlain) {
            out.append(contentsOf: bytes)
        } else {
            appendQuoted(bytes, to: &out)
        }
    }

    /// Bytes a bare value may hold. Bytes of multi-byte UTF-8 sequences are all 0x80 or above, so a value is plain
    /// exactly when each of its Unicode scalars is.
    private static func isPlain(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "=") && byte != UInt8(ascii: "\\")
            && byte != 0x7f
    }

    private static func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): appendEscape(byte, to: &out)
            case UInt8(ascii: "\n"): appendEscape(UInt8(ascii: "n"), to: &out)
            case UInt8(ascii: "\r"): appendEscape(UInt8(ascii: "r"), to: &out)
            case UInt8(ascii: "\t"): appendEscape(UInt8(ascii: "t"), to: &out)
            case 0..<0x20, 0x7f: appendUnicodeEscape(byte, to: &out)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A backslash and `letter`.
    private static func appendEscape(_ letter: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\\"))
        out.append(letter)
    }

    /// `\u00XX`, lower-case hex, as `appendQuoted(to:escapingDelete:)` writes it.
    private static func appendUnicodeEscape(_ byte: UInt8, to out: inout [UInt8]) {
        appendEscape(UInt8(ascii: "u"), to: &out)
        appendDecimal(0, minimumDigits: 2, to: &out)
        out.append(hexDigit(byte >> 4))
        out.append(hexDigit(byte & 0xf))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }

    /// Appends `value` (negative counts as 0) in decimal, with leading zeros up to `minimumDigits`.
    static func appendDecimal(_ value: Int, minimumDigits: Int = 1, to out: inout [UInt8]) {
        var remaining = max(0, value)
        var digits = 1
        var rest = remaining / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let count = max(digits, minimumDigits)
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: count))
        var index = out.count - 1
        while remaining > 0 {
            out[index] = UInt8(ascii: "0") + UInt8(remaining % 10)
            remaining /= 10
            index -= 1
        }
    }

    /// Appends `elapsed` in milliseconds with three decimals (`0.042`), as `AccessLog.milliseconds` spells it.
    static func appendMilliseconds(_ elapsed: Duration, to out: inout [UInt8]) {
        let micros = AccessLog.microseconds(elapsed)
        appendDecimal(micros / 1000, to: &out)
        out.append(UInt8(ascii: "."))
        appendDecimal(micros % 1000, minimumDigits: 3, to: &out)
    }
}

/// The `ts=` value of log lines, made once a second: the date and time up to the second are kept and only the
/// milliseconds are written for each line.
struct LogTimestampCache {
    private var second = -1
    /// `2026-11-25T09:52:14.`, the first 20 bytes of `Timestamp.format`'s text.
    private var prefix: [UInt8] = []

    /// Appends the current time as `Timestamp.now()` writes it (`2026-11-25T09:52:14.643Z`).
    mutating func appendNow(to out: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if now.tv_sec != second {
            second = now.tv_sec
            prefix = Array(Timestamp.format(seconds: second, milliseconds: 0).utf8.prefix(20))
        }
        out.append(contentsOf: prefix)
        LogfmtBytes.appendDecimal(now.tv_nsec / 1_000_000, minimumDigits: 3, to: &out)
        out.append(UInt8(ascii: "Z"))
    }
}
