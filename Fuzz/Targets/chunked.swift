// libFuzzer target: the chunked transfer-coding decoder (RFC 9112 §7.1) inside HTTPRequestParser.
//
// The input is the message body after a fixed head with `Transfer-Encoding: chunked`. Whenever the parser
// accepts a request, an independent, lenient reference decoder run on the bytes the parser consumed must
// give the same body; the body must respect the limit; split feeding must agree with whole feeding.

let head = Array("POST /allocations HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)

/// Reference: hex digits, anything up to LF, data, CRLF; until a zero chunk; then lines until an empty one.
func reference(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
    var index = bytes.startIndex
    var body: [UInt8] = []
    func line() -> ArraySlice<UInt8>? {
        guard let lf = bytes[index...].firstIndex(of: 10) else { return nil }
        defer { index = lf + 1 }
        return bytes[index..<lf]
    }
    while true {
        guard let sizeLine = line() else { return nil }
        var size = 0
        for byte in sizeLine {
            let digit: Int
            switch byte {
            case 48...57: digit = Int(byte) - 48
            case 65...70: digit = Int(byte) - 55
            case 97...102: digit = Int(byte) - 87
            default: digit = -1
            }
            if digit < 0 { break }
            size = size * 16 + digit
            if size > 1 << 24 { return nil }
        }
        if size == 0 { break }
        guard bytes.endIndex - index >= size + 2 else { return nil }
        body.append(contentsOf: bytes[index..<(index + size)])
        index += size
        guard bytes[index] == 13, bytes[index + 1] == 10 else { return nil }
        index += 2
    }
    while true {
        guard let trailer = line() else { return nil }
        if trailer.count <= 1 { return body }
    }
}

func decode(_ input: [UInt8], piece: Int, limits: HTTPServerConfiguration.Limits) -> (
    body: [UInt8]?, consumed: Int, status: Int?
) {
    var parser = HTTPRequestParser(limits: limits)
    var pending: [UInt8] = []
    var total = 0
    var offset = 0
    while true {
        let end = min(input.count, offset + piece)
        pending.append(contentsOf: input[offset..<end])
        offset = end
        let (consumed, event) = pending.withUnsafeBufferPointer { parser.parse($0) }
        precondition(consumed <= pending.count)
        pending.removeFirst(consumed)
        total += consumed
        switch event {
        case .head:
            continue
        case .needMore:
            if offset >= input.count { return (nil, total, nil) }
        case .request(let request, _):
            return (request.body, total, nil)
        case .failure(let error):
            return (nil, total, error.status.code)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    var limits = HTTPServerConfiguration.Limits()
    if bytes[0] & 0x80 != 0 {
        limits.body = 64
        limits.allHeaders = 256
    }
    let input = head + bytes[1...]
    let whole = decode(input, piece: input.count, limits: limits)
    let split = decode(input, piece: Int(bytes[0] & 7) + 1, limits: limits)
    precondition(whole.body == split.body && whole.status == split.status, "split feeding changed the result")
    if let body = whole.body {
        precondition(body.count <= limits.body, "decoded body over the limit")
        let expected = reference(input[head.count..<whole.consumed])
        if expected != body {
            fatalError("chunked decoding differs: parser \(body), reference \(String(describing: expected))")
        }
    }
    return 0
}
