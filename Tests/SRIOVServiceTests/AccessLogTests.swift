import Foundation
import Glibc
import HTTPServer
import Logging
import SRIOVCore
import Synchronization
import Testing

@testable import SRIOVService

/// Issue 12 §6: the access log formats into a buffer on the event loop and a thread of its own writes it in
/// batches. Lines read as the logfmt handler writes them; a log nobody reads costs dropped lines, never a wait.
@Suite struct AccessLogTests {
    /// One request as the server hands it to the hook.
    struct Answered {
        var method: HTTPMethod = .GET
        var target = "/pfs"
        var status = 200
        var route: String? = "/pfs"
        var actor: String?
        var peer = "127.0.0.1:40312"
        var requestID = "5sku74-0-3"
        var elapsed: Duration = .microseconds(42)

        var context: RequestContext {
            let context = RequestContext(requestID: requestID, peer: peer)
            context.annotations.route = route
            if let actor { _ = context.replacingPeer(actor) }
            return context
        }

        func record(_ writer: AccessLogWriter) {
            writer.record(
                HTTPRequest(method: method, target: target), HTTPResponse(status: HTTPStatus(code: status)),
                context, elapsed)
        }

        /// The line `LogfmtLogHandler` writes for the same request (without its newline), as the access log wrote
        /// it before it had a writer of its own.
        var handlerLine: String {
            let lines = Mutex<[String]>([])
            let logger = Logger(label: "sriovd") { label in
                LogfmtLogHandler(label: label, level: .info) { line in lines.withLock { $0.append(line) } }
            }
            var metadata: Logger.Metadata = [
                "request_id": "\(requestID)", "http.method": "\(method.rawValue)", "http.route": "\(route ?? "-")",
                "http.path": "\(HTTPRequest(method: method, target: target).path)", "http.status": "\(status)",
                "duration_ms": "\(AccessLog.milliseconds(elapsed))", "peer": "\(peer)",
            ]
            if let actor { metadata["actor"] = "\(actor)" }
            logger.info("request", metadata: metadata)
            return String(lines.withLock { $0.first ?? "" }.dropLast())
        }
    }

    @Test func linesReadAsTheLogfmtHandlerWritesThem() async throws {
        let cases = [
            Answered(),
            Answered(method: .POST, target: "/allocations", status: 201, route: "/allocations", actor: "ci-bot"),
            Answered(target: "/a=b?x=1", status: 404, route: nil, actor: "uid=0,pid=7,comm=curl"),
            Answered(target: "/say\"hi\"\\", status: 400, route: nil, peer: "unix"),
            Answered(target: "/ü/ñ/\u{1F600}", status: 404, route: nil, peer: "[::1]:5555"),
            Answered(target: "/tab\there\r\n\u{7f}\u{1}", status: 400, route: nil, requestID: ""),
            Answered(elapsed: .seconds(12) + .microseconds(345_678)),
            Answered(elapsed: .zero - .seconds(1)),
        ]
        let pipe = try LogPipe()
        let writer = try AccessLogWriter.start(fd: pipe.writeEnd)
        for answered in cases { answered.record(writer) }
        let text = try await pipe.closeAndReadAll(after: writer)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        #expect(text.hasSuffix("\n"))
        #expect(lines.count == cases.count, "\(text)")
        for (line, answered) in zip(lines, cases) {
            #expect(Self.afterTimestamp(line) == Self.afterTimestamp(answered.handlerLine))
            let timestamp = String(line.dropFirst(3).prefix { $0 != " " })
            #expect(timestamp.count == 24 && Timestamp.normalize(timestamp) == timestamp, "\(timestamp)")
        }
    }

    /// A log that nobody reads fills the pipe; the writer then holds at most `capacity` bytes and drops the rest
    /// without making `record` wait, and says how many it dropped once the log moves again.
    @Test func aStalledLogDropsLinesAndSaysHowMany() async throws {
        var configuration = AccessLogWriter.Configuration()
        configuration.capacity = 8 * 1024
        configuration.flushThreshold = 1024
        let pipe = try LogPipe()
        let writer = try AccessLogWriter.start(fd: pipe.writeEnd, configuration: configuration)
        let total = 20_000
        for index in 0..<total { Answered(requestID: "r-\(index)").record(writer) }
        let lines = try await pipe.closeAndReadAll(after: writer).split(separator: "\n")
        let written = lines.filter { $0.contains(" msg=request ") }.count
        let notices = lines.filter { $0.contains(" level=warning ") }
        let dropped = notices.compactMap { $0.split(separator: "=").last.flatMap { Int($0) } }.reduce(0, +)
        #expect(written + dropped == total, "every line is written or counted as dropped")
        #expect(dropped > total / 2, "20,000 lines do not fit in a 64 KiB pipe and 8 KiB of buffer")
        #expect(written > 0)
        #expect(notices.allSatisfy { $0.contains(#"logger=sriovd msg="access log lines dropped"#) }, "\(notices)")
        #expect(lines.allSatisfy { $0.hasPrefix("ts=") }, "whole lines only")
    }

    /// A log that takes nothing cannot keep the daemon from stopping: `close` gives up after its timeout, and the
    /// lines still go out once the log moves again.
    @Test func closingGivesUpOnAStalledLog() async throws {
        let pipe = try LogPipe()
        let writer = try AccessLogWriter.start(fd: pipe.writeEnd)
        let total = 2_000
        for index in 0..<total { Answered(requestID: "r-\(index)").record(writer) }
        let start = ContinuousClock.now
        try await onThread { writer.close(timeout: .milliseconds(200)) }
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(200) && waited < .seconds(5), "waited \(waited)")
        let lines = try await pipe.closeAndReadAll(after: writer).split(separator: "\n")
        #expect(lines.filter { $0.contains(" msg=request ") }.count == total, "nothing was dropped, only late")
    }

    @Test func decimalsAndMillisecondsAreWrittenWithoutStrings() {
        var out: [UInt8] = []
        LogfmtBytes.appendDecimal(0, to: &out)
        out.append(UInt8(ascii: " "))
        LogfmtBytes.appendDecimal(1_234_567, to: &out)
        out.append(UInt8(ascii: " "))
        LogfmtBytes.appendDecimal(7, minimumDigits: 3, to: &out)
        out.append(UInt8(ascii: " "))
        LogfmtBytes.appendMilliseconds(.microseconds(1_000_042), to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "0 1234567 007 1000.042")
    }

    /// Everything after the `ts=` field.
    static func afterTimestamp(_ line: String) -> Substring {
        line.drop { $0 != " " }
    }
}

/// A pipe: the writer writes to `writeEnd`; the test reads everything once the writer has closed.
final class LogPipe: @unchecked Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw POSIXError(.EMFILE) }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    deinit { close(readEnd) }

    /// Reads on one thread until end of file while another closes `writer` (which writes what waits) and then the
    /// write end; returns all that was read.
    func closeAndReadAll(after writer: AccessLogWriter) async throws -> String {
        async let text = onThread { self.readToEnd() }
        try await onThread {
            writer.close()
            close(self.writeEnd)
        }
        return String(decoding: try await text, as: UTF8.self)
    }

    private func readToEnd() -> [UInt8] {
        var all: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return all }
            all += chunk[..<count]
        }
    }
}
