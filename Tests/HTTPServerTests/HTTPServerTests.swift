import CLinux
import Glibc
import Logging
import Testing

@testable import HTTPServer

/// Tier 3: the whole server on 127.0.0.1:0 with real sockets.
struct HTTPServerTests {
    @Test func startReturnsTheRealPortAndRefusesASecondStart() async throws {
        try await withServer { server, port in
            #expect(port != 0)
            #expect(throws: SocketError.self) { try server.start() }
            let response = try await get("/hello", port: port)
            #expect(response.status == 200)
        }
    }

    @Test func keepsConnectionsAlive() async throws {
        try await withServer { server, port in
            let client = try TestClient(port: port)
            for index in 0..<5 {
                try client.send("GET /items/n\(index) HTTP/1.1\r\nHost: t\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.text == "n\(index)")
                #expect(response.header("Connection") == nil)
            }
            #expect(server.openConnectionCount == 1)
        }
    }

    @Test func answersPipelinedRequestsInOrder() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            let paths = (0..<20).map { $0 % 3 == 0 ? "/deferred/\(20 - $0)" : "/inline/\($0)" }
            try client.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: t\r\n\r\n" }.joined())
            for (index, path) in paths.enumerated() {
                let expected = index % 3 == 0 ? "deferred \(20 - index)" : "inline \(index)"
                #expect(try await client.readResponse().text == expected, "\(path)")
            }
        }
    }

    @Test func readsAChunkedBody() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send(
                "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n"
            )
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == "Wikipedia in\r\n\r\nchunks.")
            #expect(response.header("Content-Length") == "23")
        }
    }

    @Test func answersHeadLikeGetWithoutTheBody() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send("HEAD /items/abc HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try await client.readResponse(bodyless: true)
            #expect(response.status == 200)
            #expect(response.header("Content-Length") == "3")
            try client.send("GET /items/abc HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().text == "abc")
        }
    }

    @Test func answers404And405WithProblems() async throws {
        try await withServer { _, port in
            let missing = try await get("/nothing/here", port: port)
            #expect(missing.status == 404)
            #expect(missing.header("Content-Type") == "application/problem+json")
            #expect(missing.text.contains(#""instance":"/nothing/here""#))
            #expect(missing.text.contains(#""status":404"#))

            let client = try TestClient(port: port)
            try client.send("PUT /items/a HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            let wrong = try await client.readResponse()
            #expect(wrong.status == 405)
            #expect(wrong.header("Allow") == "DELETE, GET, HEAD")
            #expect(wrong.header("Content-Type") == "application/problem+json")
            #expect(wrong.text.contains(#""title":"Method Not Allowed""#))
            // The connection stays usable after a 404 or 405.
            try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().status == 200)
        }
    }

    @Test func honoursConnectionClose() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send(
                "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(await client.waitForClose())

            let handlerClose = try TestClient(port: port)
            try handlerClose.send("GET /close HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await handlerClose.readResponse().header("Connection") == "close")
            #expect(await handlerClose.waitForClose())
        }
    }

    @Test func closesHTTP10UnlessKeepAliveIsAsked() async throws {
        try await withServer { _, port in
            let plain = try TestClient(port: port)
            try plain.send("GET /hello HTTP/1.0\r\n\r\n")
            let first = try await plain.readResponse()
            #expect(first.status == 200)
            #expect(first.header("Connection") == "close")
            #expect(await plain.waitForClose())

            let keepAlive = try TestClient(port: port)
            for _ in 0..<3 {
                try keepAlive.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let response = try await keepAlive.readResponse()
                #expect(response.status == 200)
                #expect(response.header("Connection") == "keep-alive")
            }
        }
    }

    @Test func echoesASaneRequestIDAndGeneratesOtherwise() async throws {
        try await withServer { _, port in
            let echoed = try await get("/id", port: port, headers: "X-Request-Id: trace-42.abc\r\n")
            #expect(echoed.header("X-Request-Id") == "trace-42.abc")
            #expect(echoed.text == "trace-42.abc")

            let tooLong = String(repeating: "x", count: 129)
            let replaced = try await get("/id", port: port, headers: "X-Request-Id: \(tooLong)\r\n")
            #expect(replaced.header("X-Request-Id") != tooLong)
            #expect(replaced.header("X-Request-Id") == replaced.text)

            let spaced = try await get("/id", port: port, headers: "X-Request-Id: a b\r\n")
            #expect(spaced.header("X-Request-Id") != "a b")

            let first = try await get("/id", port: port)
            let second = try await get("/id", port: port)
            #expect(first.text != second.text)
            #expect(!first.text.isEmpty && first.text.count <= 128)
        }
    }

    @Test func sends408ForAStalledHead() async throws {
        try await withServer(configure: { $0.headerTimeout = .milliseconds(300) }) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Partial: ")
            let start = ContinuousClock.now
            let response = try await client.readResponse()
            #expect(response.status == 408)
            #expect(response.header("Connection") == "close")
            #expect(response.text.contains(#""status":408"#))
            #expect(ContinuousClock.now - start >= .milliseconds(250))
            #expect(await client.waitForClose())
        }
    }

    @Test func refusesOversizedAndUnsupportedRequestsOverTheWire() async throws {
        try await withServer { _, port in
            let cases: [(String, Int)] = [
                ("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: t\r\n\r\n", 414),
                ("GET / HTTP/1.1\r\nHost: t\r\nX: \(String(repeating: "b", count: 9000))\r\n\r\n", 431),
                ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413),
                ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
                ("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
            ]
            for (request, status) in cases {
                let client = try TestClient(port: port)
                try client.send(request)
                let response = try await client.readResponse()
                #expect(response.status == status)
                #expect(response.header("Content-Type") == "application/problem+json")
                #expect(response.header("Connection") == "close")
                #expect(await client.waitForClose())
            }
        }
    }

    @Test func aSlowClientDoesNotDelayAnother() async throws {
        try await withServer { server, port in
            // One client stalls mid-head, another stops reading a large response.
            let stalled = try TestClient(port: port)
            try stalled.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            let nonReader = try TestClient(port: port)
            try nonReader.send("GET /big/8 HTTP/1.1\r\nHost: t\r\n\r\n")
            let deferred = try TestClient(port: port)
            try deferred.send("GET /deferred/2000 HTTP/1.1\r\nHost: t\r\n\r\n")
            try await waitUntil("the server holds the three slow connections") { server.openConnectionCount == 3 }

            let start = ContinuousClock.now
            let fast = try TestClient(port: port)
            for _ in 0..<50 {
                try fast.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await fast.readResponse().status == 200)
            }
            #expect(ContinuousClock.now - start < .seconds(1))
            // The stalled ones are still served when they resume.
            try stalled.send("defghij")
            #expect(try await stalled.readResponse().text == "abcdefghij")
            #expect(try await nonReader.readResponse().body.count == 8 * 1024 * 1024)
        }
    }

    @Test func holdsAThousandIdleConnectionsWhileServing() async throws {
        let limit = raiseFileLimit()
        try #require(limit >= 2200, "RLIMIT_NOFILE hard limit too low: \(limit)")
        try await withServer(configure: { $0.clientLimits.peerConnections = 2000 }) { server, port in
            var idle: [TestClient] = []
            for _ in 0..<1000 {
                idle.append(try TestClient(port: port))
            }
            // Every accepted connection is open on the server side.
            try await waitUntil("the server holds 1000 connections") { server.openConnectionCount >= 1000 }
            #expect(server.openConnectionCount == 1000)
            let fresh = try TestClient(port: port)
            for _ in 0..<20 {
                try fresh.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await fresh.readResponse().status == 200)
            }
            // Some of the idle ones still answer.
            for client in [idle[0], idle[499], idle[999]] {
                try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
            }
        }
    }

    @Test func survivesClientsHangingUpMidResponse() async throws {
        let starts = Locked(0)
        try await withServer(handler: makeTestRouter(deferredStarts: starts)) { server, port in
            for _ in 0..<5 {
                let client = try TestClient(port: port)
                try client.send("GET /big/8 HTTP/1.1\r\nHost: t\r\n\r\n")
                var byte: UInt8 = 0
                _ = recv(client.fd, &byte, 1, 0)
                // Close with unread data: the server's writes meet a reset.
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            }
            try await waitUntil("the server has closed the five") { server.openConnectionCount == 0 }
            // A deferred request whose client is gone before the response exists.
            do {
                let client = try TestClient(port: port)
                try client.send("GET /deferred/100 HTTP/1.1\r\nHost: t\r\n\r\n")
                try await waitUntil("the deferred request has started") { starts.withLock { $0 } == 1 }
            }
            let response = try await get("/hello", port: port)
            #expect(response.status == 200)
            try await waitUntil("the server has closed every connection") { server.openConnectionCount == 0 }
        }
    }

    @Test func shutdownFinishesAnInFlightDeferredRequest() async throws {
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.shutdownGrace = .seconds(5)
        let starts = Locked(0)
        let server = HTTPServer(
            configuration: configuration, handler: makeTestRouter(deferredStarts: starts), logger: Logger(label: "t"))
        let port = try server.start().port
        let client = try TestClient(port: port)
        try client.send("GET /deferred/300 HTTP/1.1\r\nHost: t\r\n\r\n")
        let idle = try TestClient(port: port)
        try await waitUntil("the request is in flight") { starts.withLock { $0 } == 1 }
        try await waitUntil("the idle connection is open") { server.openConnectionCount == 2 }
        let start = ContinuousClock.now
        async let stopped: Void = server.shutdown()
        let response = try await client.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "deferred 300")
        #expect(response.header("Connection") == "close")
        #expect(await idle.waitForClose())
        await stopped
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(throws: ClientError.self) { try TestClient(port: port) }
        await server.shutdown()  // idempotent
    }

    @Test func shutdownIsBoundedByTheGracePeriod() async throws {
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.shutdownGrace = .milliseconds(200)
        let starts = Locked(0)
        let server = HTTPServer(
            configuration: configuration, handler: makeTestRouter(deferredStarts: starts), logger: Logger(label: "t"))
        let port = try server.start().port
        let client = try TestClient(port: port)
        try client.send("GET /deferred/5000 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await waitUntil("the request is in flight") { starts.withLock { $0 } == 1 }
        let start = ContinuousClock.now
        async let first: Void = server.shutdown()
        async let second: Void = server.shutdown()
        _ = await (first, second)
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(await client.waitForClose())
    }

    @Test func capsOpenConnections() async throws {
        try await withServer(configure: {
            $0.maxConnections = 2
            $0.clientLimits.reservedConnections = 0
        }) { server, port in
            let first = try TestClient(port: port)
            let second = try TestClient(port: port)
            try first.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            try second.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await first.readResponse().status == 200)
            #expect(try await second.readResponse().status == 200)
            let third = try TestClient(port: port)
            #expect(try await third.readResponse().status == 503)
            #expect(await third.waitForClose())
            #expect(server.openConnectionCount == 2)
        }
    }

    @Test(arguments: [Duration.zero, .milliseconds(50)])
    func answersWithAndWithoutBusyPolling(busyPoll: Duration) async throws {
        try await withServer(configure: { $0.busyPoll = busyPoll }) { _, port in
            let client = try TestClient(port: port)
            for round in 0..<3 {
                try client.send(
                    "GET /deferred/\(round) HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().text == "deferred \(round)")
                #expect(try await client.readResponse().status == 200)
                // Deliberate: a pause longer than the polling window, which is what this test is about: the loop
                // must go back to sleep and wake for the next request.
                try await Task.sleep(for: .milliseconds(80))
            }
        }
    }

    @Test func runsSeveralEventLoops() async throws {
        try await withServer(configure: { $0.eventLoopCount = 3 }) { _, port in
            var clients: [TestClient] = []
            for _ in 0..<12 { clients.append(try TestClient(port: port)) }
            for client in clients {
                try client.send("GET /deferred/5 HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            }
            for client in clients {
                #expect(try await client.readResponse().text == "deferred 5")
                #expect(try await client.readResponse().status == 200)
            }
        }
    }
}
