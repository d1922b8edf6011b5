import Glibc

/// Serializes responses into a connection's output buffer. One per event loop: it caches the `Date` value per
/// second and generates request ids from a per-process random prefix and a per-loop counter.
struct ResponseEncoder {
    private var dateSecond: time_t = 0
    private var dateBytes: [UInt8] = []
    private let idPrefix: String
    private var counter: UInt64 = 0

    init(loopIndex: Int, processPrefix: String) {
        idPrefix = processPrefix + String(loopIndex, radix: 36) + "-"
    }

    /// The client's X-Request-Id if it is 1...128 visible ASCII characters, else a new one.
    mutating func requestID(for request: HTTPRequest) -> String {
        if let given = request.headers["x-request-id"], given.utf8.count <= 128, !given.isEmpty,
            given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            return given
        }
        return nextID()
    }

    mutating func nextID() -> String {
        counter &+= 1
        return idPrefix + String(counter, radix: 36)
    }

    /// RFC 9110 §5.6.7: IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". Recomputed once per second.
    mutating func date() -> [UInt8] {
        let now = time(nil)
        if now != dateSecond || dateBytes.isEmpty {
            dateSecond = now
            dateBytes = ResponseEncoder.imfFixdate(now)
        }
        return dateBytes
    }

    static func imfFixdate(_ seconds: time_t) -> [UInt8] {
        var moment = seconds
        var parts = tm()
        gmtime_r(&moment, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let text =
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
        return Array(text.utf8)
    }

    /// Appends the response. `Content-Length`, `Date`, `X-Request-Id` and `Connection` are the server's; the
    /// handler's fields of those names (and `Transfer-Encoding`) are dropped, and header lines that would break
    /// framing (CR, LF or NUL in them, or a name that is not a token) are dropped too.
    mutating func encode(
        _ response: HTTPResponse,
        requestID: String,
        omitBody: Bool,
        keepAlive: Bool,
        http10: Bool,
        streamed: Bool = false,
        into out: inout [UInt8]
    ) {
        let status = response.status
        out.reserveCapacity(out.count + 160 + response.body.count)
        append("HTTP/1.1 ", to: &out)
        appendDecimal(status.code, to: &out)
        out.append(HTTPSyntax.space)
        appendSafe(status.reason, to: &out)
        append("\r\n", to: &out)
        for field in response.headers where isForwardable(field) {
            appendSafe(field.name, to: &out)
            append(": ", to: &out)
            appendSafe(field.value, to: &out)
            append("\r\n", to: &out)
        }
        // RFC 9110 §8.6: no Content-Length in 1xx or 204 responses; for HEAD it is the GET body's length.
        // A streamed body has no length: it ends with the connection (RFC 9112 §6.3, item 8).
        let allowsContent = status.allowsContent && !streamed
        if allowsContent {
            append("Content-Length: ", to: &out)
            appendDecimal(response.body.count, to: &out)
            append("\r\n", to: &out)
        }
        append("Date: ", to: &out)
        out.append(contentsOf: date())
        append("\r\nX-Request-Id: ", to: &out)
        appendSafe(requestID, to: &out)
        append("\r\n", to: &out)
        if !keepAlive {
            append("Connection: close\r\n", to: &out)
        } else if http10 {
            // RFC 9112 §9.3: an HTTP/1.0 client needs to be told the connection persists.
            append("Connection: keep-alive\r\n", to: &out)
        }
        append("\r\n", to: &out)
        if allowsContent && !omitBody {
            out.append(contentsOf: response.body)
        }
    }

    private func isForwardable(_ field: HTTPHeaders.Element) -> Bool {
        let name = field.name.utf8
        guard !name.isEmpty, name.allSatisfy(HTTPSyntax.isTokenChar) else { return false }
        switch name.count {
        case 4: return !HTTPSyntax.equalsIgnoringCase(field.name, "date")
        case 10: return !HTTPSyntax.equalsIgnoringCase(field.name, "connection")
        case 12: return !HTTPSyntax.equalsIgnoringCase(field.name, "x-request-id")
        case 14: return !HTTPSyntax.equalsIgnoringCase(field.name, "content-length")
        case 17: return !HTTPSyntax.equalsIgnoringCase(field.name, "transfer-encoding")
        default: return true
        }
    }

    @inline(__always)
    private func append(_ literal: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Appends text with CR, LF and NUL replaced by spaces (no response splitting).
    private func appendSafe(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            out.append(byte == HTTPSyntax.cr || byte == HTTPSyntax.lf || byte == 0 ? HTTPSyntax.space : byte)
        }
    }

    private func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(truncatingIfNeeded: value) + 0x30)
            return
        }
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) = (
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            )
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[19 - count] = UInt8(truncatingIfNeeded: rest % 10) + 0x30
                rest /= 10
                count += 1
            }
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }
}
