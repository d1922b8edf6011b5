import Glibc
import Testing

@testable import HTTPServer

/// The test router behind a head-stage check: `Authorization: Bearer good` is authenticated as `good-bot`; any
/// other Authorization, or a path under `/private` without one, is refused 401 at the head; everything else
/// proceeds anonymously. `handled` counts the requests that reached `handle` (their body read).
struct GatedHandler: HTTPHandler {
    let router = makeTestRouter()
    let handled = Locked(0)

    func admit(_ request: HTTPRequest, context: RequestContext) -> HeadDecision {
        switch request.headers["Authorization"] {
        case "Bearer good":
            return .proceed(context.replacingPeer("good-bot"), isAuthenticated: true)
        case nil where !request.path.hasPrefix("/private"):
            return .proceed(context, isAuthenticated: false)
        default:
            return .answer(.response(.serverProblem(.unauthorized, detail: "No.", instance: request.path)))
        }
    }

    func handle(_ request: HTTPRequest, context: RequestContext) -> HTTPHandlerResult {
        handled.withLock { $0 += 1 }
        return router.handle(request, context: context)
    }
}

/// Tier 3: the head-stage hook and the client limits over real sockets.
struct ClientLimitsTests {
    // MARK: - Authenticate before reading a body

    @Test func aRefusedHeadIsAnsweredWithoutItsBodyAndTheConnectionCloses() async throws {
        let handler = GatedHandler()
        try await withServer(handler: handler) { server, port in
            let client = try TestClient(port: port)
            // The head announces 1 MiB and waits for 100 Continue: a refusal must not wait for the body.
            try client.send(
                "POST /private/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 401)
            #expect(response.header("Connection") == "close")
            #expect(await client.waitForClose())
            #expect(handler.handled.withLock { $0 } == 0)
            #expect(server.statistics.bufferedBodyBytes == 0)
        }
    }

    @Test func aRefusedBodylessRequestKeepsTheConnection() async throws {
        let handler = GatedHandler()
        try await withServer(handler: handler) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET /private HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer bad\r\n\r\n")
            #expect(try await client.readResponse().status == 401)
            try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().status == 200)
        }
    }

    @Test func anAdmittedHeadGetsItsContinueAndItsBodyRead() async throws {
        try await withServer(handler: GatedHandler()) { _, port in
            let client = try TestClient(port: port)
            try client.send(
                "POST /echo HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\nContent-Length: 5\r\n"
                    + "Expect: 100-continue\r\n\r\n")
            #expect(try await client.readResponse().status == 100)
            try client.send("hello")
            #expect(try await client.readResponse().text == "hello")
        }
    }

    // MARK: - Fail fast on garbage

    @Test func aTLSClientHelloGets400AtOnce() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            let start = ContinuousClock.now
            try client.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
            let response = try await client.readResponse()
            #expect(response.status == 400)
            #expect(response.text.contains(#""type":"urn:sriovd:problem:bad-request""#))
            #expect(ContinuousClock.now - start < .seconds(2), "not after the 10 s header timeout")
            #expect(await client.waitForClose())
        }
    }

    // MARK: - One problem format

    @Test func everyServerProblemHasTheURNTypeDateAndRequestID() async throws {
        let cases: [(String, Int, String?)] = [
            ("GET /x HTTP/1.1\r\nHost: t\r\nBad Name: v\r\n\r\n", 400, "/x"),
            ("GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n", 404, "/nothing"),
            ("PUT /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405, "/hello"),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413, "/echo"),
            ("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: t\r\n\r\n", 414, nil),
            ("GET /h HTTP/1.1\r\nHost: t\r\nX: \(String(repeating: "b", count: 9000))\r\n\r\n", 431, nil),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "/echo"),
            ("GET /v HTTP/2.0\r\nHost: t\r\n\r\n", 505, "/v"),
        ]
        try await withServer { _, port in
            for (request, status, instance) in cases {
                let client = try TestClient(port: port)
                try client.send(request)
                let response = try await client.readResponse()
                Self.expectServerProblem(response, status: status, instance: instance)
            }
        }
        try await withServer(configure: { $0.headerTimeout = .milliseconds(100) }) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET /slow HTTP/1.1\r\nHost: t\r\n")
            Self.expectServerProblem(try await client.readResponse(), status: 408, instance: "/slow")
        }
        try await withServer(configure: {
            $0.maxConnections = 1
            $0.clientLimits.reservedConnections = 0
        }) { _, port in
            let first = try TestClient(port: port)
            try first.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await first.readResponse().status == 200)
            let refused = try await TestClient(port: port).readResponse()
            Self.expectServerProblem(refused, status: 503, instance: nil)
            #expect(refused.header("Retry-After") == "1")
        }
    }

    static func expectServerProblem(_ response: ClientResponse, status: Int, instance: String?) {
        let slug = HTTPStatus(code: status).problemSlug
        #expect(response.status == status)
        #expect(response.header("Content-Type") == "application/problem+json", "\(status)")
        #expect(response.text.contains(#""type":"urn:sriovd:problem:\#(slug)""#), "\(status): \(response.text)")
        #expect(response.header("Date") != nil, "\(status)")
        #expect(response.header("X-Request-Id")?.isEmpty == false, "\(status)")
        if let instance {
            #expect(response.text.contains(#""instance":"\#(instance)""#), "\(status): \(response.text)")
        }
    }

    // MARK: - Per-client limits

    @Test func aClientOverItsConnectionLimitGets429AndAMetric() async throws {
        try await withServer(configure: {
            $0.clientLimits.peerConnections = 2
            $0.clientLimits.reservedConnections = 0
        }) { server, port in
            let held = [try TestClient(port: port), try TestClient(port: port)]
            try await waitUntil("the server holds two connections") { server.openConnectionCount == 2 }
            let refused = try await TestClient(port: port).readResponse()
            #expect(refused.status == 429)
            #expect(refused.header("Retry-After") == "1")
            #expect(server.statistics.refusals[.peerConnections] == 1)
            try held[0].send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await held[0].readResponse().status == 200)
        }
    }

    @Test func anAuthenticatedCallerGetsAReservedSlotAndAnAnonymousOneDoesNot() async throws {
        try await withServer(
            configure: {
                $0.clientLimits.peerConnections = 2
                $0.clientLimits.reservedConnections = 8
            }, handler: GatedHandler()
        ) { server, port in
            let held = [try TestClient(port: port), try TestClient(port: port)]
            try await waitUntil("the address holds its two connections") { server.openConnectionCount == 2 }
            let authenticated = try TestClient(port: port)
            try authenticated.send("GET /hello HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n\r\n")
            #expect(try await authenticated.readResponse().status == 200)
            // It left probation: it keeps serving.
            try authenticated.send("GET /hello HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n\r\n")
            #expect(try await authenticated.readResponse().status == 200)
            let anonymous = try TestClient(port: port)
            try anonymous.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            let refused = try await anonymous.readResponse()
            #expect(refused.status == 429)
            #expect(refused.header("Retry-After") == "1")
            #expect(held.count == 2)
        }
    }

    @Test func aSilentConnectionOnProbationGivesItsReservedSlotBackWithinASecond() async throws {
        try await withServer(configure: {
            $0.clientLimits.peerConnections = 1
            $0.clientLimits.reservedConnections = 8
        }) { server, port in
            let held = try TestClient(port: port)
            try await waitUntil("the address holds its one connection") { server.openConnectionCount == 1 }
            let silent = try TestClient(port: port)
            try await waitUntil("the silent one is on probation") { server.openConnectionCount == 2 }
            let start = ContinuousClock.now
            #expect(await silent.waitForClose())
            #expect(ContinuousClock.now - start < .seconds(2), "not after the 60 s idle timeout")
            try held.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await held.readResponse().status == 200)
        }
    }

    @Test func aTokenHolderTakesTheSlotOfTheOldestSilentConnectionOnProbation() async throws {
        try await withServer(
            configure: {
                $0.clientLimits.peerConnections = 1
                $0.clientLimits.reservedConnections = 4
            }, handler: GatedHandler()
        ) { server, port in
            // One regular slot and both probation slots (half the reserve) taken by silent connections.
            let silent = [try TestClient(port: port), try TestClient(port: port), try TestClient(port: port)]
            try await waitUntil("the three are held") { server.openConnectionCount == 3 }
            let authenticated = try TestClient(port: port)
            try authenticated.send("GET /hello HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer good\r\n\r\n")
            #expect(try await authenticated.readResponse().status == 200)
            #expect(await silent[1].waitForClose(), "the oldest on probation gave its slot")
            #expect(server.statistics.refusals[.peerConnections] == 1)
        }
    }

    @Test func aClientOverItsRequestsInFlightGets429() async throws {
        let starts = Locked(0)
        try await withServer(
            configure: { $0.clientLimits.peerRequests = 2 }, handler: makeTestRouter(deferredStarts: starts)
        ) { server, port in
            let slow = [try TestClient(port: port), try TestClient(port: port)]
            for client in slow { try client.send("GET /deferred/400 HTTP/1.1\r\nHost: t\r\n\r\n") }
            try await waitUntil("two requests are in flight") { starts.withLock { $0 } == 2 }
            let third = try TestClient(port: port)
            try third.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            let refused = try await third.readResponse()
            #expect(refused.status == 429)
            #expect(refused.text.contains("urn:sriovd:problem:too-many-requests"))
            for client in slow { #expect(try await client.readResponse().status == 200) }
            #expect(server.statistics.refusals[.peerRequests] == 1)
        }
    }

    @Test func bodiesOverTheServersBodyMemoryGet503() async throws {
        try await withServer(configure: {
            $0.clientLimits.bodyMemory = 1000
            $0.clientLimits.peerBufferedBytes = 10_000
        }) { server, port in
            let first = try TestClient(port: port)
            try first.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 800\r\n\r\nabc")
            try await waitUntil("the first body is admitted") { server.statistics.bufferedBodyBytes == 800 }
            let second = try TestClient(port: port)
            try second.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 300\r\n\r\n")
            let refused = try await second.readResponse()
            #expect(refused.status == 503)
            #expect(refused.header("Retry-After") == "1")
            try first.send(String(repeating: "x", count: 797))
            #expect(try await first.readResponse().body.count == 800)
            try await waitUntil("the body memory is given back") { server.statistics.bufferedBodyBytes == 0 }
        }
    }

    @Test func aBodyTrickledBelowTheMinimumRateTimesOutOnItsTotalDeadline() async throws {
        try await withServer(configure: {
            $0.headerTimeout = .milliseconds(300)
            $0.clientLimits.minBodyRate = 1000
        }) { server, port in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
            let start = ContinuousClock.now
            // Deliberate: a slow client, one byte every 50 ms (20 B/s). A timer restarted by each byte never fires.
            var answered: ClientResponse?
            for _ in 0..<40 where answered == nil {
                if (try? client.send("x")) == nil { break }
                try await Task.sleep(for: .milliseconds(50))
                if server.statistics.refusals[.slowClient] == 1 { answered = try await client.readResponse() }
            }
            #expect(answered?.status == 408)
            #expect(ContinuousClock.now - start < .seconds(1))
        }
    }
}
