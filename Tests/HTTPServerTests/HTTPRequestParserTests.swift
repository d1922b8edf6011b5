import Testing

@testable import HTTPServer

/// Tier 1: the parser fed plain bytes.
struct HTTPRequestParserTests {
    enum Outcome: Equatable {
        case needMore
        case failure(Int)
    }

    /// Feeds `bytes` in pieces of `step` bytes, the way a connection would, and collects what comes out.
    static func run(
        _ bytes: [UInt8],
        step: Int = .max,
        limits: HTTPServerConfiguration.Limits = .init()
    ) -> (requests: [HTTPRequest], keepAlive: [Bool], outcome: Outcome, continues: Int) {
        var parser = HTTPRequestParser(limits: limits)
        var buffer: [UInt8] = []
        var requests: [HTTPRequest] = []
        var keepAlive: [Bool] = []
        var continues = 0
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + min(step, bytes.count))
            buffer.append(contentsOf: bytes[offset..<end])
            offset = end
            parsing: while true {
                let (consumed, event) = buffer.withUnsafeBufferPointer { parser.parse($0) }
                buffer.removeFirst(consumed)
                switch event {
                case .needMore:
                    break parsing
                case .head(_, _, let expectsContinue):
                    if expectsContinue { continues += 1 }
                case .failure(let error):
                    return (requests, keepAlive, .failure(error.status.code), continues)
                case .request(let request, let keep):
                    requests.append(request)
                    keepAlive.append(keep)
                }
            }
        }
        return (requests, keepAlive, .needMore, continues)
    }

    static func run(_ text: String, step: Int = .max) -> (requests: [HTTPRequest], keepAlive: [Bool], outcome: Outcome)
    {
        let result = run(Array(text.utf8), step: step)
        return (result.requests, result.keepAlive, result.outcome)
    }

    static func status(of text: String) -> Int? {
        if case .failure(let code) = run(text).outcome { return code }
        return nil
    }

    @Test func parsesASimpleGet() throws {
        let result = Self.run("GET /pfs/0000:3b:00.0/vfs?x=1 HTTP/1.1\r\nHost: localhost\r\nX-A:  b c \r\n\r\n")
        #expect(result.outcome == .needMore)
        let request = try #require(result.requests.first)
        #expect(request.method == .GET)
        #expect(request.target == "/pfs/0000:3b:00.0/vfs?x=1")
        #expect(request.path == "/pfs/0000:3b:00.0/vfs")
        #expect(request.version == .http11)
        #expect(request.headers["host"] == "localhost")
        #expect(request.headers["X-a"] == "b c")
        #expect(request.body.isEmpty)
        #expect(result.keepAlive == [true])
    }

    @Test func decodesTheQuery() throws {
        let request = try #require(
            Self.run("GET /s?q=a+b%20c&empty&x=%zz&q=2 HTTP/1.1\r\nHost: h\r\n\r\n").requests.first)
        #expect(request.path == "/s")
        #expect(request.queryValue("q") == "a b c")
        #expect(request.queryValue("empty") == "")
        #expect(request.queryValue("x") == "%zz")
        #expect(request.query.count == 4)
        #expect(request.query[3].value == "2")
    }

    @Test func readsAContentLengthBody() throws {
        let result = Self.run("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        #expect(result.requests.first.map { String(decoding: $0.body, as: UTF8.self) } == "hello")
    }

    @Test func acceptsIdenticalRepeatedContentLengths() throws {
        let result = Self.run(
            "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc"
        )
        #expect(result.requests.first?.body == Array("abc".utf8))
    }

    @Test func decodesChunkedBodiesWithExtensionsAndTrailers() throws {
        let text =
            "POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Trailer: yes\r\nOther: 1\r\n\r\n"
            + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        for step in [Int.max, 1, 7] {
            let result = Self.run(text, step: step)
            #expect(result.outcome == .needMore)
            #expect(result.requests.count == 2)
            #expect(result.requests.first.map { String(decoding: $0.body, as: UTF8.self) } == "hello world")
            #expect(result.requests.last?.path == "/next")
        }
    }

    @Test func parsesPipelinedRequestsInOrder() {
        let text = (1...5).map { "GET /\($0) HTTP/1.1\r\nHost: h\r\n\r\n" }.joined()
        let result = Self.run(text)
        #expect(result.requests.map(\.path) == ["/1", "/2", "/3", "/4", "/5"])
    }

    @Test func byteByByteFeedingGivesTheSameRequest() {
        let text = "PUT /a?b=c HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nX-Y: z\r\n\r\nbody"
        let whole = Self.run(text)
        let bytewise = Self.run(text, step: 1)
        #expect(bytewise.requests.count == 1)
        #expect(bytewise.requests.first?.body == whole.requests.first?.body)
        #expect(bytewise.requests.first?.target == whole.requests.first?.target)
        #expect(bytewise.requests.first?.headers["x-y"] == "z")
    }

    @Test func ignoresEmptyLinesBeforeTheRequestLine() {
        let result = Self.run("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(result.requests.count == 1)
    }

    @Test func keepAliveFollowsVersionAndConnection() {
        #expect(Self.run("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keepAlive == [false])
        #expect(Self.run("GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, Close\r\n\r\n").keepAlive == [false])
        #expect(Self.run("GET / HTTP/1.0\r\n\r\n").keepAlive == [false])
        #expect(Self.run("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive == [true])
        #expect(Self.run("GET / HTTP/1.0\r\n\r\n").requests.first?.version == .http10)
    }

    @Test func treatsAHigherMinorVersionAsHTTP11() {
        let result = Self.run("GET / HTTP/1.2\r\nHost: h\r\n\r\n")
        #expect(result.requests.first?.version == .http11)
    }

    @Test func acceptsAbsoluteFormAndAsteriskForm() {
        #expect(
            Self.run("GET http://example.com/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n").requests.first?.path
                == "/a/b")
        #expect(Self.run("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n").requests.first?.path == "/")
        #expect(Self.run("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").requests.first?.path == "*")
    }

    @Test func signalsExpectContinueBeforeTheBody() {
        let head = "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        let result = Self.run(Array((head + "ok").utf8), step: head.utf8.count)
        #expect(result.continues == 1)
        #expect(result.requests.first?.body == Array("ok".utf8))
    }

    @Test func waitsForIncompleteInput() {
        #expect(Self.run("GET / HTTP/1.1\r\nHost: h\r\n").requests.isEmpty)
        #expect(Self.run("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc").requests.isEmpty)
        #expect(
            Self.run("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").outcome == .needMore)
    }

    static let h = "Host: h\r\n"

    /// The battery of malformed and hostile requests, each with the exact status it must get.
    static let hostile: [(name: String, request: String, status: Int)] = [
        (
            "Content-Length with Transfer-Encoding",
            "POST / HTTP/1.1\r\n\(h)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400
        ),
        (
            "differing Content-Length fields", "POST / HTTP/1.1\r\n\(h)Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
            400
        ),
        ("differing Content-Length list", "POST / HTTP/1.1\r\n\(h)Content-Length: 5, 6\r\n\r\n", 400),
        ("non-numeric Content-Length", "POST / HTTP/1.1\r\n\(h)Content-Length: abc\r\n\r\n", 400),
        ("negative Content-Length", "POST / HTTP/1.1\r\n\(h)Content-Length: -1\r\n\r\n", 400),
        ("signed Content-Length", "POST / HTTP/1.1\r\n\(h)Content-Length: +5\r\n\r\n", 400),
        ("empty Content-Length", "POST / HTTP/1.1\r\n\(h)Content-Length:\r\n\r\n", 400),
        ("non-hex chunk size", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("0x chunk size", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n", 400),
        ("empty chunk size", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n\r\n", 400),
        ("chunk size then garbage", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n", 400),
        ("chunk data without CRLF", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400),
        ("chunk size bare LF", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n2\nab\r\n", 400),
        ("bare LF line endings", "GET / HTTP/1.1\nHost: h\n\n", 400),
        ("bare LF in a header", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400),
        ("obs-fold", "GET / HTTP/1.1\r\n\(h)X-A: b\r\n c\r\n\r\n", 400),
        ("space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
        ("tab before colon", "GET / HTTP/1.1\r\n\(h)X-A\t: b\r\n\r\n", 400),
        ("invalid header name chars", "GET / HTTP/1.1\r\n\(h)X(A): b\r\n\r\n", 400),
        ("header without colon", "GET / HTTP/1.1\r\n\(h)NoColonHere\r\n\r\n", 400),
        ("empty header name", "GET / HTTP/1.1\r\n\(h): b\r\n\r\n", 400),
        ("NUL in a header value", "GET / HTTP/1.1\r\n\(h)X-A: a\u{0}b\r\n\r\n", 400),
        ("bare CR in a header value", "GET / HTTP/1.1\r\n\(h)X-A: a\rb\r\n\r\n", 400),
        ("invalid method chars", "G(T / HTTP/1.1\r\n\(h)\r\n", 400),
        ("empty method", " / HTTP/1.1\r\n\(h)\r\n", 400),
        ("missing version", "GET /\r\n\(h)\r\n", 400),
        ("lowercase version", "GET / http/1.1\r\n\(h)\r\n", 400),
        ("two-digit minor version", "GET / HTTP/1.10\r\n\(h)\r\n", 400),
        ("HTTP/2.0", "GET / HTTP/2.0\r\n\(h)\r\n", 505),
        ("HTTP/0.9", "GET / HTTP/0.9\r\n\(h)\r\n", 505),
        ("HTTP/3.0", "GET / HTTP/3.0\r\n\(h)\r\n", 505),
        ("space in target", "GET /a b HTTP/1.1\r\n\(h)\r\n", 400),
        ("double space after method", "GET  / HTTP/1.1\r\n\(h)\r\n", 400),
        ("control char in target", "GET /a\u{1}b HTTP/1.1\r\n\(h)\r\n", 400),
        ("non-ASCII in target", "GET /caf\u{E9} HTTP/1.1\r\n\(h)\r\n", 400),
        ("fragment in target", "GET /a#b HTTP/1.1\r\n\(h)\r\n", 400),
        ("asterisk with GET", "GET * HTTP/1.1\r\n\(h)\r\n", 400),
        ("authority-form", "CONNECT example.com:443 HTTP/1.1\r\n\(h)\r\n", 400),
        ("relative target", "GET a/b HTTP/1.1\r\n\(h)\r\n", 400),
        ("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400),
        ("two Host fields", "GET / HTTP/1.1\r\n\(h)\(h)\r\n", 400),
        ("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("final coding not chunked", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: gzip\r\n\r\n", 400),
        ("chunked twice", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
        ("unknown transfer coding", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("request line over 8 KiB", "GET /\(String(repeating: "a", count: 8200)) HTTP/1.1\r\n\(h)\r\n", 414),
        ("unterminated request line over 8 KiB", "GET /\(String(repeating: "a", count: 9000))", 414),
        ("one header over 8 KiB", "GET / HTTP/1.1\r\n\(h)X-Big: \(String(repeating: "b", count: 8200))\r\n\r\n", 431),
        ("unterminated header over 8 KiB", "GET / HTTP/1.1\r\n\(h)X-Big: \(String(repeating: "b", count: 8300))", 431),
        (
            "headers over 32 KiB",
            "GET / HTTP/1.1\r\n\(h)" + (1...5).map { "X-\($0): \(String(repeating: "c", count: 7000))\r\n" }.joined()
                + "\r\n", 431
        ),
        ("101 headers", "GET / HTTP/1.1\r\n\(h)" + (1...100).map { "X-\($0): v\r\n" }.joined() + "\r\n", 431),
        ("Content-Length over 1 MiB", "POST / HTTP/1.1\r\n\(h)Content-Length: 1048577\r\n\r\n", 413),
        ("Content-Length beyond Int", "POST / HTTP/1.1\r\n\(h)Content-Length: 99999999999999999999999\r\n\r\n", 413),
        ("huge chunk size", "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffffff\r\n", 413),
        (
            "chunks over 1 MiB",
            "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n80000\r\n\(String(repeating: "x", count: 0x80000))\r\n80001\r\n",
            413
        ),
        (
            "trailers over 32 KiB",
            "POST / HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\n\r\n0\r\n"
                + (1...5).map { "T-\($0): \(String(repeating: "t", count: 7000))\r\n" }.joined() + "\r\n", 431
        ),
    ]

    @Test(arguments: 0..<hostile.count)
    func refusesHostileRequest(_ index: Int) {
        let (name, request, status) = Self.hostile[index]
        #expect(Self.status(of: request) == status, "\(name)")
        // The same verdict when the bytes trickle in.
        #expect(Self.run(request, step: 3).outcome == .failure(status), "\(name), 3 bytes at a time")
    }

    @Test func theBatteryIsLargeEnough() {
        #expect(Self.hostile.count >= 30)
    }

    @Test func reportsThePathOfARefusedRequest() {
        var parser = HTTPRequestParser(limits: .init())
        let bytes = Array("POST /pfs?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n".utf8)
        let (_, event) = bytes.withUnsafeBufferPointer { parser.parse($0) }
        guard case .failure(let error) = event else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.path == "/pfs")
        #expect(error.status == .badRequest)
    }

    @Test func limitsAreConfigurable() {
        var limits = HTTPServerConfiguration.Limits()
        limits.body = 4
        let result = Self.run(
            Array("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello".utf8), limits: limits)
        #expect(result.outcome == .failure(413))
        limits.headerCount = 1
        let headers = Self.run(Array("GET / HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n".utf8), limits: limits)
        #expect(headers.outcome == .failure(431))
    }

    /// Random mutations of valid requests, fed in random pieces: the parser never traps, never loops, and refuses
    /// only with the statuses it documents.
    @Test func survivesMutatedRequests() {
        var random = SplitMix64(seed: 0x5EED)
        let templates = [
            "GET /pfs/0000:3b:00.0/vfs?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
            "PUT /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
        ].map { Array($0.utf8) }
        let interesting: [UInt8] = [13, 10, 32, 9, 58, 0, 0x7F, 0xFF, UInt8(ascii: "0"), UInt8(ascii: "f")]
        let allowed: Set<Int> = [400, 413, 414, 431, 501, 505]
        for _ in 0..<3000 {
            var bytes = templates[Int(random.next() % UInt64(templates.count))]
            for _ in 0..<(1 + random.next() % 4) {
                let position = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 4 {
                case 0: bytes[position] = interesting[Int(random.next() % UInt64(interesting.count))]
                case 1: bytes.insert(interesting[Int(random.next() % UInt64(interesting.count))], at: position)
                case 2: bytes.remove(at: position)
                default: bytes[position] = UInt8(truncatingIfNeeded: random.next())
                }
                if bytes.isEmpty { bytes = [10] }
            }
            let step = 1 + Int(random.next() % 16)
            let result = Self.run(bytes, step: step)
            if case .failure(let status) = result.outcome {
                #expect(allowed.contains(status), "\(status) for \(bytes)")
            }
            for request in result.requests {
                #expect(request.body.count <= 5)
            }
        }
    }
}

/// A small deterministic generator for the mutation test.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
