import Glibc
import Testing

@testable import HTTPServer

/// Issue 12's starvation finding, reproduced: one anonymous TCP client takes every connection it can and trickles
/// request bodies, while a Unix-socket client and an authenticated TCP client go on being served promptly.
struct StarvationTests {
    @Test func aFloodOfTricklingAnonymousClientsDoesNotStarveTheSocketOrATokenHolder() async throws {
        let limit = raiseFileLimit()
        try #require(limit >= 1400, "RLIMIT_NOFILE hard limit too low: \(limit)")
        let socketPath = "/tmp/sriovd-starve-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        try await withServer(
            configure: {
                $0.maxConnections = 512
                $0.clientLimits.reservedConnections = 64
                // One address may take the whole anonymous pool, as in the finding (4,096 of 4,096).
                $0.clientLimits.peerConnections = 512
                $0.clientLimits.peerRequests = 512
                $0.clientLimits.peerBufferedBytes = 1 << 20
                $0.unixSocket = .init(path: socketPath, mode: 0o600)
            }, handler: GatedHandler()
        ) { server, port in
            let unix = try TestClient(unixPath: socketPath)
            let token = try TestClient(port: port)
            let before = try await Self.measure(unix: unix, token: token, trickling: [])
            let flood = try await Self.flood(server: server, port: port, attempts: 600)
            #expect(flood.refused > 0, "the flood reached the anonymous limit")
            #expect(server.openConnectionCount >= 448, "the flood holds the anonymous pool")
            let during = try await Self.measure(unix: unix, token: token, trickling: flood.clients)
            print(
                "starvation: \(server.openConnectionCount - 2) flood connections held, \(flood.refused) refused; "
                    + "p99 unix \(during.unix) (\(before.unix) before), token \(during.token) (\(before.token) before)")
            // 50 ms, the bound; on a machine so loaded that the p99 without a flood is already over a
            // third of that, three times that p99 (the flood must not be what makes clients wait).
            #expect(during.unix < max(.milliseconds(50), before.unix * 3))
            #expect(during.token < max(.milliseconds(50), before.token * 3))
        }
    }

    /// The p99 of 200 GETs each on the Unix-socket client and on the token holder, taken in turn on one thread
    /// with blocking reads; a byte more on each `trickling` connection every 20 rounds.
    static func measure(unix: TestClient, token: TestClient, trickling: [TestClient]) async throws -> (
        unix: Duration, token: Duration
    ) {
        try await offPool {
            var unixTimes: [Duration] = []
            var tokenTimes: [Duration] = []
            for round in 0..<200 {
                if round % 20 == 0 { trickle(trickling) }
                unixTimes.append(try timedGet(unix, headers: ""))
                tokenTimes.append(try timedGet(token, headers: "Authorization: Bearer good\r\n"))
            }
            return (p99(unixTimes), p99(tokenTimes))
        }
    }

    /// Opens `attempts` connections, each sending a head for a 100-byte body and its first byte, and waits until
    /// the server has held or refused each; returns them all and how many were refused.
    static func flood(server: HTTPServer, port: UInt16, attempts: Int) async throws -> (
        clients: [TestClient], refused: Int
    ) {
        let alreadyOpen = server.openConnectionCount
        var clients: [TestClient] = []
        for _ in 0..<attempts {
            let client = try TestClient(port: port)
            try? client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nx")
            clients.append(client)
        }
        func refused() -> Int { server.statistics.refusals[.connections, default: 0] }
        try await waitUntil("every flood connection is held or refused") {
            server.openConnectionCount - alreadyOpen + refused() == attempts
        }
        return (clients, refused())
    }

    /// One more body byte on each connection (the refused ones are closed; sending to them fails quietly).
    static func trickle(_ clients: [TestClient]) {
        for client in clients { try? client.send("y") }
    }

    static func timedGet(_ client: TestClient, headers: String) throws -> Duration {
        let start = ContinuousClock.now
        try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\(headers)\r\n")
        let response = try client.readResponseBlocking()
        #expect(response.status == 200)
        return ContinuousClock.now - start
    }

    static func p99(_ samples: [Duration]) -> Duration {
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
    }
}
