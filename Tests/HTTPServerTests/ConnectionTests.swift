import CLinux
import Glibc
import Logging
import Testing
import Threading

@testable import HTTPServer

/// One event loop with connections adopted from `socketpair()`: the connection logic without TCP or a listener.
final class LoopHarness: @unchecked Sendable {
    let server: ServerContext
    let loop: EventLoop
    let logged = Locked<[(String, Int, String)]>([])

    init(
        configure: (inout HTTPServerConfiguration) -> Void = { _ in },
        handler: any HTTPHandler = makeTestRouter()
    ) throws {
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let logged = self.logged
        server = ServerContext(
            configuration: configuration,
            handler: handler,
            logger: Logger(label: "test"),
            accessLog: { request, response, context, _ in
                logged.withLock { $0.append((request.path, response.status.code, context.requestID)) }
            }
        )
        loop = try EventLoop(index: 0, server: server)
        let loop = self.loop
        try DetachedThread.spawn(name: "test-loop") { loop.run() }
    }

    func connect() throws -> TestClient {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw ClientError(description: "socketpair: \(errno)")
        }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        let key = PeerKey.address("unix")
        guard case .success(let slot) = server.admission.withLock({ $0.openConnection(key, isUnix: true) }) else {
            throw ClientError(description: "the admission ledger refused a test connection")
        }
        let loop = self.loop
        let fd = fds[0]
        loop.execute { loop.adopt(fd: fd, peer: "unix", slot: slot, key: key) }
        return TestClient(fd: fds[1])
    }

    func stop() async {
        let loop = self.loop
        loop.execute { loop.stop() }
        do {
            try await waitUntil("the event loop has exited") { loop.hasExited.withLock { $0 } }
        } catch {
            Issue.record(error)
        }
    }
}

/// Tier 2: one connection at a time over a socketpair.
struct ConnectionTests {
    @Test func answersPipelinedRequestsInOrderAroundDeferredOnes() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        let paths = ["/deferred/150", "/inline/1", "/deferred/10", "/inline/2", "/deferred/0", "/inline/3"]
        try client.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: t\r\n\r\n" }.joined())
        var bodies: [String] = []
        for _ in paths { bodies.append(try await client.readResponse().text) }
        #expect(bodies == ["deferred 150", "inline 1", "deferred 10", "inline 2", "deferred 0", "inline 3"])
        await harness.stop()
    }

    @Test func assemblesARequestThatTricklesIn() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        let request = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"
        for byte in request.utf8 {
            try client.send([byte])
            // Deliberate: a pause after each line, so the server meets the request in pieces.
            if byte == 10 { try await Task.sleep(for: .milliseconds(1)) }
        }
        let response = try await client.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "hello world")
        #expect(response.header("X-Body-Length") == "11")
        await harness.stop()
    }

    @Test func sends100ContinueWhenAsked() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        let interim = try await client.readResponse()
        #expect(interim.status == 100)
        try client.send("abc")
        let response = try await client.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "abc")
        await harness.stop()
    }

    @Test func refusesMalformedRequestWithProblemAndCloses() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        try client.send(
            "GET /items/x HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try await client.readResponse()
        #expect(response.status == 400)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(response.header("Connection") == "close")
        #expect(response.text.hasPrefix(#"{"detail":"#))
        #expect(response.text.contains(#""instance":"/items/x""#))
        #expect(response.text.contains(#""status":400"#))
        #expect(response.text.contains(#""title":"Bad Request""#))
        #expect(response.text.contains(#""type":"urn:sriovd:problem:bad-request""#))
        #expect(await client.waitForClose())
        await harness.stop()
    }

    @Test func answersAfterTheClientHalfCloses() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        try client.send("GET /deferred/50 HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        shutdown(client.fd, Int32(SHUT_WR))
        #expect(try await client.readResponse().text == "deferred 50")
        #expect(try await client.readResponse().status == 200)
        #expect(await client.waitForClose())
        await harness.stop()
    }

    @Test func sends408WhenTheHeadStalls() async throws {
        let harness = try LoopHarness { $0.headerTimeout = .milliseconds(300) }
        let client = try harness.connect()
        let start = ContinuousClock.now
        try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n")
        let response = try await client.readResponse()
        let elapsed = ContinuousClock.now - start
        #expect(response.status == 408)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(elapsed >= .milliseconds(280) && elapsed < .seconds(2))
        #expect(await client.waitForClose())
        await harness.stop()
    }

    @Test func sends408WhenTheBodyStalls() async throws {
        let harness = try LoopHarness { $0.headerTimeout = .milliseconds(300) }
        let client = try harness.connect()
        try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        let response = try await client.readResponse()
        #expect(response.status == 408)
        #expect(response.text.contains(#""instance":"/echo""#))
        #expect(await client.waitForClose())
        await harness.stop()
    }

    @Test func closesAnIdleConnectionSilently() async throws {
        let harness = try LoopHarness { $0.idleTimeout = .milliseconds(300) }
        let client = try harness.connect()
        try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        let start = ContinuousClock.now
        #expect(try await client.readResponse().status == 200)
        #expect(await client.waitForClose())
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(280) && elapsed < .seconds(3))
        await harness.stop()
    }

    @Test func callsTheAccessLogOncePerResponse() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        try client.send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\n\r\n")
        _ = try await client.readResponse()
        try client.send("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await client.readResponse()
        // The access log is called before a response is written, so both entries are in once it has been read.
        let logged = harness.logged.withLock { $0 }
        #expect(logged.count == 2)
        #expect(logged.first?.0 == "/hello")
        #expect(logged.first?.1 == 200)
        #expect(logged.first?.2 == "abc-123")
        #expect(logged.last?.1 == 404)
        await harness.stop()
    }

    @Test func headKeepsHeadersAndDropsTheBody() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        try client.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try await client.readResponse(bodyless: true)
        let get = try await client.readResponse()
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(head.header("Content-Length") == "\(get.body.count)")
        #expect(head.header("Content-Type") == "application/json")
        #expect(get.text == #"{"hello":"world"}"#)
        await harness.stop()
    }

    @Test func everyResponseCarriesDateLengthAndRequestID() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try await client.readResponse()
        let date = try #require(response.header("Date"))
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        #expect(date.count == 29)
        #expect(date.hasSuffix(" GMT"))
        #expect(date.dropFirst(3).hasPrefix(", "))
        #expect(response.header("Content-Length") == "17")
        #expect(response.header("X-Request-Id")?.isEmpty == false)
        await harness.stop()
    }

    @Test func noContentHasNoContentLength() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        try client.send("DELETE /items/a HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try await client.readResponse()
        #expect(response.status == 204)
        #expect(response.header("Content-Length") == nil)
        #expect(try await client.readResponse().status == 200)
        await harness.stop()
    }

    @Test func writesALargeResponseToASlowReader() async throws {
        let harness = try LoopHarness()
        let client = try harness.connect()
        try client.send("GET /big/4 HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        // Deliberate: the reader is slow to start, so the server meets a full socket buffer and must wait.
        try await Task.sleep(for: .milliseconds(100))
        let big = try await client.readResponse()
        #expect(big.body.count == 4 * 1024 * 1024)
        #expect(big.body.allSatisfy { $0 == 0x61 })
        #expect(try await client.readResponse().status == 200)
        await harness.stop()
    }
}
