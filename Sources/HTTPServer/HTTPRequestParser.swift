/// Why a request was refused: the status to send, a sentence for the problem's `detail`, and the path when the
/// request line had been read.
struct HTTPParseError: Error, Equatable, Sendable {
    var status: HTTPStatus
    var detail: String
    var path: String? = nil
}

/// An incremental HTTP/1.1 request parser (RFC 9112). Feed it the unconsumed bytes of a connection; it returns
/// how many it consumed and what happened. It keeps the body it has decoded so far, so consumed bytes may be
/// discarded by the caller. After a `.failure` the parser must not be used again.
struct HTTPRequestParser {
    enum Event {
        /// Everything given was consumed or is kept for later; give more bytes.
        case needMore
        /// A complete head, before any of its body is read: the request without its body, the body's length as
        /// announced (0 for none, nil for chunked) and whether the client waits for `100 Continue` before sending
        /// it (RFC 9110 §10.1.1). Parsing the body waits for the next call; a caller that refuses the request
        /// stops there and never reads it.
        case head(HTTPRequest, announcedBody: Int?, expectsContinue: Bool)
        /// A complete request, and whether the connection may stay open after its response.
        case request(HTTPRequest, keepAlive: Bool)
        case failure(HTTPParseError)
    }

    private enum State {
        case head
        /// The head was reported and announced no body; the next call completes the request.
        case complete
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailer(bytes: Int)
    }

    private struct Head {
        var request: HTTPRequest
        var keepAlive: Bool
    }

    let limits: HTTPServerConfiguration.Limits
    private var state = State.head
    /// Head scanning progress, relative to the start of the unconsumed bytes (a head is consumed whole).
    private var scanned = 0
    private var requestLineEnd = -1
    private var lineStart = 0
    private var headerLines = 0
    private var head: Head?
    private var body: [UInt8] = []

    init(limits: HTTPServerConfiguration.Limits) {
        self.limits = limits
    }

    /// True once any byte of the next request has been seen.
    var hasPartialRequest: Bool {
        if case .head = state { return scanned > 0 }
        return true
    }

    /// True while the head is complete and the body is still arriving.
    var isReadingBody: Bool {
        if case .head = state { return false }
        return true
    }

    /// True when the head was reported and the request completes without further bytes (it has no body).
    var isAwaitingNoBytes: Bool {
        if case .complete = state { return true }
        return false
    }

    /// Ends a request answered at its head when it announced no body, so that the next request can follow on the
    /// connection; returns whether the head allows that (keep-alive). False, and nothing changes, when the request
    /// has a body: the connection must close, since its body was not read.
    mutating func skipBodylessRequest() -> Bool {
        guard case .complete = state, let head else { return false }
        self.head = nil
        state = .head
        return head.keepAlive
    }

    /// The path of the request whose head is still arriving, from its request line when that is complete: read
    /// from `unconsumed` (the bytes given to `parse` and not consumed yet), for a 408's `instance`. Nil when the
    /// request line is not complete or not well-formed.
    func pathOfPartialHead(_ unconsumed: UnsafeBufferPointer<UInt8>) -> String? {
        guard case .head = state, requestLineEnd > 0, requestLineEnd <= unconsumed.count else { return nil }
        let line = UnsafeBufferPointer(rebasing: unconsumed[0..<(requestLineEnd - 1)])
        guard let first = line.firstIndex(of: HTTPSyntax.space), let last = line.lastIndex(of: HTTPSyntax.space),
            last > first + 1
        else { return nil }
        let target = UnsafeBufferPointer(rebasing: line[(first + 1)..<last])
        guard target.allSatisfy(HTTPSyntax.isTargetChar) else { return nil }
        return HTTPRequest.split(target: String(decoding: target, as: UTF8.self)).path
    }

    /// Body bytes of the current request decoded so far.
    var bodyBytesReceived: Int { body.count }

    /// The current request's path, when its request line has been parsed.
    var currentPath: String? { head?.request.path }

    mutating func parse(_ buffer: UnsafeBufferPointer<UInt8>) -> (consumed: Int, event: Event) {
        var consumed = 0
        while true {
            let rest = UnsafeBufferPointer(rebasing: buffer[consumed...])
            let (used, event) = step(rest)
            consumed += used
            if let event { return (consumed, event) }
            if used == 0 { return (consumed, .needMore) }
        }
    }

    // MARK: - One state at a time

    /// Advances by one unit; nil means "call again" (when bytes were used) or "need more" (when none were).
    private mutating func step(_ bytes: UnsafeBufferPointer<UInt8>) -> (Int, Event?) {
        switch state {
        case .head:
            return stepHead(bytes)
        case .complete:
            return (0, finish())
        case .body(let remaining):
            let take = min(remaining, bytes.count)
            // Reserved once the body's first bytes arrive, that is once the head was admitted.
            if body.isEmpty && take > 0 { body.reserveCapacity(remaining) }
            if take > 0 { body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[0..<take])) }
            if take == remaining { return (take, finish()) }
            state = .body(remaining: remaining - take)
            return (take, take == 0 ? .needMore : nil)
        case .chunkSize:
            return stepChunkSize(bytes)
        case .chunkData(let remaining):
            let take = min(remaining, bytes.count)
            if take > 0 { body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[0..<take])) }
            state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            return (take, take == 0 ? .needMore : nil)
        case .chunkDataEnd:
            // RFC 9112 §7.1: chunk-data is followed by CRLF.
            guard bytes.count >= 2 else { return (0, .needMore) }
            guard bytes[0] == HTTPSyntax.cr && bytes[1] == HTTPSyntax.lf else {
                return (0, fail(.badRequest, "Chunk data is not followed by CRLF."))
            }
            state = .chunkSize
            return (2, nil)
        case .trailer(let total):
            return stepTrailer(bytes, total: total)
        }
    }

    private mutating func fail(_ status: HTTPStatus, _ detail: String) -> Event {
        .failure(HTTPParseError(status: status, detail: detail, path: currentPath))
    }

    private mutating func stepHead(_ bytes: UnsafeBufferPointer<UInt8>) -> (Int, Event?) {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF) received before the request-line.
        // The CR and LF of such a line may arrive in different reads: a lone CR at the start waits for the next byte.
        if scanned == 0, bytes.first == HTTPSyntax.cr {
            guard bytes.count >= 2 else { return (0, .needMore) }
            if bytes[1] == HTTPSyntax.lf { return (2, nil) }
        }
        var index = scanned
        while index < bytes.count {
            if requestLineEnd < 0, !HTTPRequestParser.mayBePartOfRequestLine(bytes, at: index) {
                return (0, fail(.badRequest, "The bytes received cannot start or continue an HTTP request line."))
            }
            if bytes[index] == HTTPSyntax.lf {
                // RFC 9112 §2.2: lines end in CRLF; a bare LF is refused here rather than tolerated.
                guard index > 0, bytes[index - 1] == HTTPSyntax.cr else {
                    return (0, fail(.badRequest, "A line ends in a bare LF; lines must end in CRLF."))
                }
                let lineLength = index - 1 - lineStart
                if requestLineEnd < 0 {
                    requestLineEnd = index
                    if lineLength > limits.requestLine {
                        return (0, fail(.uriTooLong, "The request line exceeds \(limits.requestLine) bytes."))
                    }
                } else if lineLength == 0 {
                    let headLength = index + 1
                    let event = parseHead(UnsafeBufferPointer(rebasing: bytes[0..<headLength]))
                    resetHeadScan()
                    return (headLength, event)
                } else {
                    headerLines += 1
                    if let event = checkHeaderLimits(lineLength: lineLength, sectionLength: index - requestLineEnd) {
                        return (0, event)
                    }
                }
                lineStart = index + 1
            }
            index += 1
        }
        scanned = index
        // Refuse oversized heads before they are complete, so a client cannot make the buffer grow unbounded.
        if requestLineEnd < 0 {
            if bytes.count > limits.requestLine + 1 {
                return (0, fail(.uriTooLong, "The request line exceeds \(limits.requestLine) bytes."))
            }
        } else if let event = checkHeaderLimits(
            lineLength: bytes.count - lineStart - 1,
            sectionLength: bytes.count - requestLineEnd - 1
        ) {
            return (0, event)
        }
        return (0, .needMore)
    }

    /// Whether the byte at `index` of an unfinished request line can belong to one: a method starts with a token
    /// character, and the rest is visible ASCII or SP, then CRLF (RFC 9112 §3). Anything else (a TLS
    /// ClientHello's 0x16, binary) is refused at once instead of waiting for the header timeout.
    private static func mayBePartOfRequestLine(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        let byte = bytes[index]
        if index == 0 { return HTTPSyntax.isTokenChar(byte) }
        switch byte {
        case 0x20...0x7E, HTTPSyntax.lf: return true
        case HTTPSyntax.cr: return index + 1 == bytes.count || bytes[index + 1] == HTTPSyntax.lf
        default: return false
        }
    }

    private mutating func checkHeaderLimits(lineLength: Int, sectionLength: Int) -> Event? {
        if lineLength > limits.oneHeader {
            return fail(.requestHeaderFieldsTooLarge, "A header field exceeds \(limits.oneHeader) bytes.")
        }
        if sectionLength > limits.allHeaders {
            return fail(.requestHeaderFieldsTooLarge, "The header fields exceed \(limits.allHeaders) bytes.")
        }
        if headerLines > limits.headerCount {
            return fail(.requestHeaderFieldsTooLarge, "More than \(limits.headerCount) header fields.")
        }
        return nil
    }

    private mutating func resetHeadScan() {
        scanned = 0
        requestLineEnd = -1
        lineStart = 0
        headerLines = 0
    }

    /// A parsed request line.
    private struct RequestLine {
        var method: HTTPMethod
        var target: String
        var version: HTTPVersion
    }

    /// The header fields of a head, and what they say about its framing and connection.
    private struct FieldLines {
        var headers = HTTPHeaders()
        var contentLength: Int?
        var transferCodings: [String] = []
        var hasTransferEncoding = false
        var connectionClose = false
        var connectionKeepAlive = false
        var hostCount = 0
        var expectsContinue = false
    }

    /// Parses a complete head (request line, field lines, empty line) and sets up body framing.
    private mutating func parseHead(_ bytes: UnsafeBufferPointer<UInt8>) -> Event? {
        let requestLine: RequestLine
        switch parseRequestLine(UnsafeBufferPointer(rebasing: bytes[0..<(requestLineEnd - 1)])) {
        case .success(let parsed): requestLine = parsed
        case .failure(let error): return .failure(error)
        }
        let (version, target) = (requestLine.version, requestLine.target)
        let fields: FieldLines
        switch parseFieldLines(bytes, target: target) {
        case .success(let parsed): fields = parsed
        case .failure(let error): return .failure(error)
        }
        // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host, or with more than one.
        if version == .http11 && fields.hostCount != 1 || fields.hostCount > 1 {
            return failHead(.badRequest, "An HTTP/1.1 request needs exactly one Host header field.", target)
        }
        let keepAlive =
            version == .http11 ? !fields.connectionClose : fields.connectionKeepAlive && !fields.connectionClose
        var request = HTTPRequest(method: requestLine.method, target: target, version: version)
        request.headers = fields.headers
        head = Head(request: request, keepAlive: keepAlive)
        body = []
        if let refusal = setUpBody(fields, version: version, target: target) { return refusal }
        let announced: Int? = fields.hasTransferEncoding ? nil : fields.contentLength ?? 0
        let expectsContinue = fields.expectsContinue && version == .http11 && announced != 0
        return .head(request, announcedBody: announced, expectsContinue: expectsContinue)
    }

    /// RFC 9112 §3: request-line = method SP request-target SP HTTP-version (without its CRLF).
    private func parseRequestLine(_ line: UnsafeBufferPointer<UInt8>) -> Result<RequestLine, HTTPParseError> {
        func refuse(_ status: HTTPStatus, _ detail: String, path: String? = nil) -> Result<RequestLine, HTTPParseError>
        {
            .failure(HTTPParseError(status: status, detail: detail, path: path))
        }
        guard let firstSpace = line.firstIndex(of: HTTPSyntax.space),
            let lastSpace = line.lastIndex(of: HTTPSyntax.space), lastSpace > firstSpace
        else {
            return refuse(.badRequest, "The request line is not: method SP request-target SP HTTP-version.")
        }
        let methodBytes = UnsafeBufferPointer(rebasing: line[0..<firstSpace])
        // RFC 9112 §3.1, RFC 9110 §9.1: method = token.
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(HTTPSyntax.isTokenChar) else {
            return refuse(.badRequest, "The method is not a token.")
        }
        let targetBytes = UnsafeBufferPointer(rebasing: line[(firstSpace + 1)..<lastSpace])
        // RFC 9112 §3.2: the request-target has no whitespace or controls; RFC 3986 §2 for its characters.
        guard !targetBytes.isEmpty, targetBytes.allSatisfy(HTTPSyntax.isTargetChar) else {
            return refuse(.badRequest, "The request-target is empty or contains characters a URI cannot.")
        }
        let method = HTTPMethod.make(validatedBytes: methodBytes)
        // RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT only) or asterisk-form (OPTIONS
        // only). This server does not proxy, so CONNECT and authority-form are refused.
        let first = targetBytes[0]
        if first == UInt8(ascii: "*") {
            guard targetBytes.count == 1, method == .OPTIONS else {
                return refuse(.badRequest, "The asterisk-form target is only valid alone, with OPTIONS.")
            }
        } else if first != UInt8(ascii: "/") {
            guard HTTPRequestParser.isAbsoluteForm(targetBytes) else {
                return refuse(.badRequest, "The request-target is not in origin-form or absolute-form.")
            }
        }
        let target = String(decoding: targetBytes, as: UTF8.self)
        let versionBytes = UnsafeBufferPointer(rebasing: line[(lastSpace + 1)...])
        // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
        guard versionBytes.count == 8, HTTPSyntax.equals(UnsafeBufferPointer(rebasing: versionBytes[0..<5]), "HTTP/"),
            let major = HTTPRequestParser.digit(versionBytes[5]), versionBytes[6] == UInt8(ascii: "."),
            let minor = HTTPRequestParser.digit(versionBytes[7])
        else {
            return refuse(.badRequest, "The HTTP-version is malformed.")
        }
        // RFC 9110 §6.2: only major version 1 is served (505 otherwise); RFC 9110 §2.5: a higher 1.x minor
        // version is processed as the highest minor version supported, 1.1.
        guard major == 1 else {
            return refuse(
                .httpVersionNotSupported, "HTTP/\(major).\(minor) is not supported; use HTTP/1.1.",
                path: HTTPRequest.split(target: target).path)
        }
        return .success(RequestLine(method: method, target: target, version: minor == 0 ? .http10 : .http11))
    }

    /// The field lines of a complete head: from after the request line to before the empty line.
    private func parseFieldLines(_ bytes: UnsafeBufferPointer<UInt8>, target: String)
        -> Result<FieldLines, HTTPParseError>
    {
        var fields = FieldLines()
        fields.headers.reserveCapacity(headerLines)
        var start = requestLineEnd + 1
        while start < bytes.count - 2 {
            var end = start
            while bytes[end] != HTTPSyntax.lf { end += 1 }
            let fieldLine = UnsafeBufferPointer(rebasing: bytes[start..<(end - 1)])
            start = end + 1
            let name: UnsafeBufferPointer<UInt8>
            let value: UnsafeBufferPointer<UInt8>
            switch splitFieldLine(fieldLine) {
            case .success(let parts): (name, value) = parts
            case .failure(let refusal): return .failure(headError(refusal.status, refusal.detail, target))
            }
            let valueText = String(decoding: value, as: UTF8.self)
            fields.headers.add(String(decoding: name, as: UTF8.self), valueText)
            if let refusal = note(name: name, value: value, valueText: valueText, in: &fields) {
                return .failure(headError(refusal.status, refusal.detail, target))
            }
        }
        return .success(fields)
    }

    /// RFC 9112 §5: field-line = field-name ":" OWS field-value OWS. The name and the value without its OWS; the
    /// refusal's path is left for the caller to fill in.
    private func splitFieldLine(_ fieldLine: UnsafeBufferPointer<UInt8>)
        -> Result<(UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>), HTTPParseError>
    {
        // RFC 9112 §5.2: obs-fold (a line starting with SP or HTAB) is refused with 400.
        if fieldLine[0] == HTTPSyntax.space || fieldLine[0] == HTTPSyntax.tab {
            return .failure(HTTPParseError(status: .badRequest, detail: "Obsolete line folding is not accepted."))
        }
        // RFC 9110 §5.1: field-name = token.
        guard let colon = fieldLine.firstIndex(of: HTTPSyntax.colon), colon > 0 else {
            return .failure(
                HTTPParseError(status: .badRequest, detail: "A header line has no field name and colon."))
        }
        let nameBytes = UnsafeBufferPointer(rebasing: fieldLine[0..<colon])
        // RFC 9112 §5.1: no whitespace between field name and colon; such a request MUST get 400.
        guard nameBytes.allSatisfy(HTTPSyntax.isTokenChar) else {
            return .failure(
                HTTPParseError(
                    status: .badRequest,
                    detail: "A header field name is not a token (whitespace before the colon?)."))
        }
        var valueStart = colon + 1
        var valueEnd = fieldLine.count
        while valueStart < valueEnd,
            fieldLine[valueStart] == HTTPSyntax.space || fieldLine[valueStart] == HTTPSyntax.tab
        {
            valueStart += 1
        }
        while valueEnd > valueStart,
            fieldLine[valueEnd - 1] == HTTPSyntax.space || fieldLine[valueEnd - 1] == HTTPSyntax.tab
        {
            valueEnd -= 1
        }
        let valueBytes = UnsafeBufferPointer(rebasing: fieldLine[valueStart..<valueEnd])
        // RFC 9110 §5.5: CR, LF and NUL (and other CTLs) in a field value are refused.
        guard valueBytes.allSatisfy(HTTPSyntax.isFieldValueChar) else {
            return .failure(
                HTTPParseError(status: .badRequest, detail: "A header field value contains a control character."))
        }
        return .success((nameBytes, valueBytes))
    }

    /// Records what one header field says about framing and the connection; a refusal (without its path) when
    /// it breaks the framing rules.
    private func note(
        name nameBytes: UnsafeBufferPointer<UInt8>, value valueBytes: UnsafeBufferPointer<UInt8>,
        valueText value: String,
        in fields: inout FieldLines
    ) -> HTTPParseError? {
        switch nameBytes.count {
        case 4 where HTTPSyntax.equalsIgnoringCase(nameBytes, "host"):
            fields.hostCount += 1
        case 6 where HTTPSyntax.equalsIgnoringCase(nameBytes, "expect"):
            // RFC 9110 §10.1.1: the only expectation defined is 100-continue.
            if HTTPSyntax.equalsIgnoringCase(valueBytes, "100-continue") { fields.expectsContinue = true }
        case 10 where HTTPSyntax.equalsIgnoringCase(nameBytes, "connection"):
            // RFC 9112 §9.3, §9.6: connection options "close" and "keep-alive".
            for option in HTTPSyntax.listElements(value) {
                if option == "close" { fields.connectionClose = true }
                if option == "keep-alive" { fields.connectionKeepAlive = true }
            }
        case 14 where HTTPSyntax.equalsIgnoringCase(nameBytes, "content-length"):
            // RFC 9110 §8.6: Content-Length = 1*DIGIT; RFC 9112 §6.3 item 5: a list of identical values
            // may be accepted as one; differing values are a framing error (400).
            let elements = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingOWS() }
            for element in elements {
                guard !element.isEmpty, element.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    return HTTPParseError(status: .badRequest, detail: "Content-Length is not a number.")
                }
                // More than 18 digits cannot fit and is surely over the limit.
                let length = element.utf8.count > 18 ? Int.max : Int(element)!
                if let existing = fields.contentLength, existing != length {
                    return HTTPParseError(status: .badRequest, detail: "Content-Length has differing values.")
                }
                fields.contentLength = length
            }
        case 17 where HTTPSyntax.equalsIgnoringCase(nameBytes, "transfer-encoding"):
            fields.hasTransferEncoding = true
            fields.transferCodings.append(contentsOf: HTTPSyntax.listElements(value))
        default:
            break
        }
        return nil
    }

    /// Sets up the body's framing from a head's fields: chunked, a Content-Length, or none. A refusal when the
    /// framing is invalid or the body too large.
    private mutating func setUpBody(_ fields: FieldLines, version: HTTPVersion, target: String) -> Event? {
        if fields.hasTransferEncoding {
            let transferCodings = fields.transferCodings
            // RFC 9112 §6.1: a request with both Transfer-Encoding and Content-Length is a framing error;
            // the server MAY reject it, and does (400), closing the connection.
            if fields.contentLength != nil {
                return failHead(.badRequest, "Both Transfer-Encoding and Content-Length are present.", target)
            }
            // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message MUST be treated as faulty framing.
            if version == .http10 {
                return failHead(.badRequest, "Transfer-Encoding is not valid in HTTP/1.0.", target)
            }
            // RFC 9112 §6.3 item 4: if chunked is not the final coding of a request, respond 400.
            guard transferCodings.last == "chunked" else {
                return failHead(.badRequest, "The final transfer coding is not chunked.", target)
            }
            // RFC 9112 §7: chunked MUST NOT be applied more than once; RFC 9112 §6.1: an unknown transfer coding
            // SHOULD get 501.
            guard transferCodings.count == 1 else {
                if transferCodings.dropLast().contains("chunked") {
                    return failHead(.badRequest, "chunked is applied more than once.", target)
                }
                return failHead(.notImplemented, "Only the chunked transfer coding is supported.", target)
            }
            state = .chunkSize
            return nil
        }
        let length = fields.contentLength ?? 0
        if length > limits.body {
            return failHead(.contentTooLarge, "The body exceeds \(limits.body) bytes.", target)
        }
        if length == 0 {
            state = .complete
            return nil
        }
        state = .body(remaining: length)
        return nil
    }

    /// A refusal after the request line was read; the path is worked out only now, off the hot path.
    private func failHead(_ status: HTTPStatus, _ detail: String, _ target: String) -> Event {
        .failure(headError(status, detail, target))
    }

    private func headError(_ status: HTTPStatus, _ detail: String, _ target: String) -> HTTPParseError {
        HTTPParseError(status: status, detail: detail, path: HTTPRequest.split(target: target).path)
    }

    /// RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; last-chunk = 1*"0" [ chunk-ext ] CRLF.
    private mutating func stepChunkSize(_ bytes: UnsafeBufferPointer<UInt8>) -> (Int, Event?) {
        let maxLine = 4096
        guard let lf = UnsafeBufferPointer(rebasing: bytes.prefix(maxLine + 2)).firstIndex(of: HTTPSyntax.lf) else {
            if bytes.count > maxLine + 1 { return (0, fail(.badRequest, "A chunk-size line is too long.")) }
            return (0, .needMore)
        }
        guard lf > 0, bytes[lf - 1] == HTTPSyntax.cr else {
            return (0, fail(.badRequest, "A chunk-size line ends in a bare LF."))
        }
        var size = 0
        var index = 0
        while index < lf - 1, let digit = HTTPRequest.hexValue(bytes[index]) {
            // RFC 9112 §7.1: recipients MUST anticipate large hexadecimal numbers and prevent overflow.
            if size > (limits.body >> 4) + 1 {
                return (0, fail(.contentTooLarge, "The body exceeds \(limits.body) bytes."))
            }
            size = size << 4 | Int(digit)
            index += 1
        }
        guard index > 0 else { return (0, fail(.badRequest, "A chunk size is not hexadecimal.")) }
        // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ); extensions
        // are ignored but must start with ";" and hold no control characters.
        var extIndex = index
        while extIndex < lf - 1, bytes[extIndex] == HTTPSyntax.space || bytes[extIndex] == HTTPSyntax.tab {
            extIndex += 1
        }
        if extIndex < lf - 1 {
            guard bytes[extIndex] == UInt8(ascii: ";"),
                UnsafeBufferPointer(rebasing: bytes[extIndex..<(lf - 1)]).allSatisfy(HTTPSyntax.isFieldValueChar)
            else {
                return (0, fail(.badRequest, "A chunk size is followed by something other than an extension."))
            }
        }
        if body.count + size > limits.body {
            return (0, fail(.contentTooLarge, "The body exceeds \(limits.body) bytes."))
        }
        state = size == 0 ? .trailer(bytes: 0) : .chunkData(remaining: size)
        return (lf + 1, nil)
    }

    /// RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ) then CRLF. Trailer fields are read and ignored.
    private mutating func stepTrailer(_ bytes: UnsafeBufferPointer<UInt8>, total: Int) -> (Int, Event?) {
        let window = UnsafeBufferPointer(rebasing: bytes.prefix(limits.allHeaders - total + 2))
        guard let lf = window.firstIndex(of: HTTPSyntax.lf) else {
            if bytes.count > limits.allHeaders - total + 1 {
                return (0, fail(.requestHeaderFieldsTooLarge, "The trailer fields exceed \(limits.allHeaders) bytes."))
            }
            return (0, .needMore)
        }
        guard lf > 0, bytes[lf - 1] == HTTPSyntax.cr else {
            return (0, fail(.badRequest, "A trailer line ends in a bare LF."))
        }
        if lf == 1 { return (2, finish()) }
        let line = UnsafeBufferPointer(rebasing: bytes[0..<(lf - 1)])
        guard line.allSatisfy(HTTPSyntax.isFieldValueChar) else {
            return (0, fail(.badRequest, "A trailer field contains a control character."))
        }
        state = .trailer(bytes: total + lf + 1)
        return (lf + 1, nil)
    }

    private mutating func finish() -> Event {
        let head = self.head!
        var request = head.request
        request.body = body
        self.head = nil
        body = []
        state = .head
        return .request(request, keepAlive: head.keepAlive)
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= 0x30 && byte <= 0x39 ? Int(byte - 0x30) : nil
    }

    /// RFC 9112 §3.2.2: absolute-form = absolute-URI; only http and https are meaningful to this server.
    private static func isAbsoluteForm(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let lowered = bytes.prefix(8).map(HTTPSyntax.lower)
        return lowered.starts(with: Array("http://".utf8)) || lowered.starts(with: Array("https://".utf8))
    }
}
