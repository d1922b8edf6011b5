import Testing

@testable import HTTPServer

/// Regressions found by the libFuzzer targets in Fuzz/ (issue 7). Each test names the crash input.
struct RegressionFuzzTests {
    /// Fuzz/Crashes/http_parser-lone-cr: "\r" | "\n\r\n..." — RFC 9112 §2.2 says an empty line before the
    /// request-line is ignored; it was ignored only when CR and LF arrived in the same read. When the CR came
    /// alone, the parser began scanning a request line at it and answered 400 to a valid request.
    @Test func anEmptyLineBeforeTheRequestIsIgnoredWhateverTheReadBoundaries() {
        let text = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
        let whole = HTTPRequestParserTests.run(text)
        let bytewise = HTTPRequestParserTests.run(text, step: 1)
        #expect(whole.requests.count == 1)
        #expect(bytewise.outcome == .needMore)
        #expect(bytewise.requests.count == 1)
    }

    /// The same between pipelined requests: a stray CRLF after one request, split across reads.
    @Test func aStrayCRLFBetweenPipelinedRequestsSplitAcrossReadsIsIgnored() {
        let first = Array("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r".utf8)
        let second = Array("\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        var parser = HTTPRequestParser(limits: .init())
        var buffer: [UInt8] = []
        var paths: [String] = []
        var failed: Int?
        for piece in [first, second] {
            buffer.append(contentsOf: piece)
            parsing: while true {
                let (consumed, event) = buffer.withUnsafeBufferPointer { parser.parse($0) }
                buffer.removeFirst(consumed)
                switch event {
                case .request(let request, _): paths.append(request.path)
                case .failure(let error): failed = error.status.code; break parsing
                case .needMore: break parsing
                case .head: continue
                }
            }
        }
        #expect(failed == nil)
        #expect(paths == ["/a", "/b"])
    }
}
