import Foundation
import Glibc
import Testing

@testable import HTTPServer

/// TLS on the TCP listener, over real sockets with real clients (curl, `openssl s_client`) and certificates made
/// by `openssl req` in a scratch folder.
@Suite(.serialized) struct TLSTests {
    /// Runs `body` against a TLS server on 127.0.0.1:0.
    private func withTLSServer(
        clientCA: Bool = false, configure: (inout HTTPServerConfiguration) -> Void = { _ in },
        _ body: (HTTPServer, UInt16, TLSFixture, TLSCredentials) async throws -> Void
    ) async throws {
        let fixture = try TLSFixture()
        defer { fixture.remove() }
        let credentials = try fixture.credentials(clientCA: clientCA)
        try await withServer(
            configure: {
                $0.tls = credentials
                configure(&$0)
            }, handler: makeTLSTestRouter()
        ) { server, port in
            try await body(server, port, fixture, credentials)
        }
    }

    private func curl(_ port: UInt16, _ fixture: TLSFixture, _ paths: [String], _ options: [String] = [])
        async throws -> Tool.Result
    {
        try await Tool.runOffPool(
            "curl",
            ["-sS", "-v", "-m", "5", "--cacert", fixture.caPath] + options
                + paths.map { "https://127.0.0.1:\(port)\($0)" })
    }

    @Test func curlIsAnsweredOverTLS12And13OnOneKeptAliveConnection() async throws {
        try await withTLSServer { _, port, fixture, _ in
            for (version, options) in [("TLSv1.3", ["--tlsv1.3"]), ("TLSv1.2", ["--tlsv1.2", "--tls-max", "1.2"])] {
                let result = try await curl(port, fixture, ["/hello", "/items/second"], options)
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout == #"{"hello":"world"}"# + "second")
                #expect(result.stderr.contains("SSL connection using \(version)"), "\(result.stderr)")
                #expect(result.stderr.contains("Re-using existing connection"), "keep-alive over TLS")
            }
            // TLS 1.1 and older are refused.
            let old = try await Tool.runOffPool(
                "openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(old.status != 0)
            #expect(old.stderr.contains("alert protocol version"), "\(old.stderr)")
        }
    }

    @Test func responsesAndBodiesLargerThanARecordCrossTLS() async throws {
        try await withTLSServer { _, port, fixture, _ in
            let big = try await curl(port, fixture, ["/big/4"])
            #expect(big.status == 0, "\(big.stderr)")
            #expect(big.stdout.utf8.count == 4 * 1024 * 1024 && big.stdout.utf8.allSatisfy { $0 == 0x61 })
            let body = String(repeating: "0123456789abcdef", count: 48 * 1024)
            let file = fixture.folder + "/body"
            try body.write(toFile: file, atomically: true, encoding: .utf8)
            let echo = try await curl(port, fixture, ["/echo"], ["--data-binary", "@" + file])
            #expect(echo.status == 0, "\(echo.stderr)")
            #expect(echo.stdout == body)
        }
    }

    @Test func plainHTTPSentToTheTLSPortIsAnswered400AsNginxDoes() async throws {
        try await withTLSServer { _, port, _, _ in
            let client = try TestClient(port: port)
            try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 400)
            #expect(response.text.contains("The plain HTTP request was sent to HTTPS port"), "\(response.text)")
            #expect(response.header("Connection") == "close")
            #expect(await client.waitForClose())
            // Bytes that are neither TLS nor HTTP get the parser's plain 400.
            let garbage = try TestClient(port: port)
            try garbage.send("\u{01}\u{02}garbage\r\n\r\n")
            #expect(try await garbage.readResponse().status == 400)
        }
    }

    @Test func garbageAndTruncatedHandshakesCloseWithoutStallingOthers() async throws {
        try await withTLSServer(configure: { $0.headerTimeout = .seconds(1) }) { server, port, fixture, _ in
            let hello = try makeClientHello()
            // A handshake record that holds garbage: an alert, then close.
            let garbage = try TestClient(port: port)
            try garbage.send([0x16, 0x03, 0x01, 0x00, 0x40] + [UInt8](repeating: 0xEE, count: 64))
            #expect(await garbage.waitForClose())
            // Half a ClientHello, then EOF.
            let cutShort = try TestClient(port: port)
            try cutShort.send(Array(hello.prefix(hello.count / 2)))
            shutdown(cutShort.fd, Int32(SHUT_WR))
            #expect(await cutShort.waitForClose())
            // Half a ClientHello, then silence: others are served meanwhile; it is closed at the header timeout.
            let silent = try TestClient(port: port)
            try silent.send(Array(hello.prefix(hello.count / 2)))
            let started = ContinuousClock.now
            let other = try await curl(port, fixture, ["/hello"])
            #expect(other.status == 0 && other.stdout.contains("world"), "\(other.stderr)")
            #expect(await silent.waitForClose())
            #expect(ContinuousClock.now - started < .seconds(3))
            #expect(server.statistics.refusals[.slowClient, default: 0] >= 1)
        }
    }

    @Test func aHandshakeOneBytePerSecondEndsAtTheHeaderTimeoutAndStallsNobody() async throws {
        try await withTLSServer(configure: { $0.headerTimeout = .seconds(3) }) { server, port, fixture, _ in
            let hello = try makeClientHello()
            let slow = try TestClient(port: port)
            let started = ContinuousClock.now
            var sent = 0
            var isClosed = false
            while sent < hello.count && !isClosed {
                try slow.send([hello[sent]])
                sent += 1
                // Meanwhile a whole TLS request on another connection is answered at once.
                let before = ContinuousClock.now
                let other = try await curl(port, fixture, ["/hello"])
                #expect(other.status == 0 && other.stdout.contains("world"), "\(other.stderr)")
                #expect(ContinuousClock.now - before < .seconds(1))
                // The next byte goes a second later, unless the server closes the connection first.
                isClosed = try await offPool { Self.closes(slow.fd, within: 1000) }
            }
            #expect(isClosed, "the trickling handshake was not cut off")
            #expect(sent < hello.count)
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(2900) && elapsed < .seconds(6), "\(elapsed)")
            #expect(server.statistics.refusals[.slowClient, default: 0] == 1)
        }
    }

    @Test func handshakesInProgressCountAgainstTheClientsConnectionLimit() async throws {
        let limits: (inout HTTPServerConfiguration) -> Void = {
            $0.clientLimits.peerConnections = 2
            $0.clientLimits.reservedConnections = 0
        }
        try await withTLSServer(configure: limits) { server, port, fixture, _ in
            let hello = try makeClientHello()
            var first: TestClient? = try TestClient(port: port)
            try first?.send(Array(hello.prefix(10)))
            let second = try TestClient(port: port)
            try second.send(Array(hello.prefix(10)))
            try await waitUntil("both handshakes are open") { server.openConnectionCount == 2 }
            // A third from the same address is closed at once (a TLS client could not read a 429 before its
            // handshake), and counted.
            let third = try TestClient(port: port)
            #expect(await third.waitForClose())
            #expect(server.statistics.refusals[.peerConnections, default: 0] == 1)
            first = nil
            try await waitUntil("the first is gone") { server.openConnectionCount == 1 }
            let served = try await curl(port, fixture, ["/hello"])
            #expect(served.status == 0 && served.stdout.contains("world"), "\(served.stderr)")
        }
    }

    /// Polls `fd` for at most `milliseconds`: true when the peer closed it (EOF or reset).
    private static func closes(_ fd: Int32, within milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, milliseconds) == 1 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) <= 0
    }

    @Test func renegotiationIsRefused() async throws {
        try await withTLSServer { _, port, fixture, _ in
            // s_client renegotiates on "R" (TLS 1.2; 1.3 has no renegotiation): the server answers with the
            // no_renegotiation alert, which ends s_client. Had it renegotiated, s_client would wait for more input
            // until killed, and print no such alert.
            let result = try await Tool.runOffPool(
                "openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_2", "-CAfile", fixture.caPath],
                input: "R\n", holdingInputFor: 10)
            #expect(result.stderr.contains("RENEGOTIATING"), "\(result.stderr)")
            #expect(result.stderr.contains("no renegotiation"), "\(result.stderr)")
            #expect(result.status != 124, "s_client was still running")
            // The server goes on serving.
            let after = try await curl(port, fixture, ["/hello"])
            #expect(after.status == 0 && after.stdout.contains("world"), "\(after.stderr)")
        }
    }

    @Test func verifiedClientCertificatesReachTheHandler() async throws {
        try await withTLSServer(clientCA: true) { _, port, fixture, _ in
            let withCertificate = try await curl(
                port, fixture, ["/whoami"], ["--cert", fixture.clientCertificate, "--key", fixture.clientKey])
            #expect(withCertificate.status == 0, "\(withCertificate.stderr)")
            #expect(withCertificate.stdout == "cn:node-agent,dns:agent.example,email:ops@example.com")
            // A client certificate is asked for, not required: tokens still work without one.
            let without = try await curl(port, fixture, ["/whoami"])
            #expect(without.stdout == "no certificate", "\(without.stderr)")
            // One the client CA did not issue ends the handshake.
            let rogue = try await curl(
                port, fixture, ["/whoami"], ["--cert", fixture.rogueCertificate, "--key", fixture.rogueKey])
            #expect(rogue.status != 0)
            #expect(rogue.stdout.isEmpty)
        }
    }

    @Test func reloadServesTheNewCertificateToNewConnections() async throws {
        try await withTLSServer { _, port, fixture, credentials in
            let subject = { () async throws -> String in
                try await Tool.runOffPool(
                    "openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", fixture.caPath]
                ).stdout
            }
            #expect(try await subject().contains("subject=CN = localhost"))
            try fixture.issueServerCertificate(commonName: "reloaded")
            try credentials.reload()
            #expect(try await subject().contains("subject=CN = reloaded"))
            // A broken key is refused and the context in force stays.
            try "not a key".write(toFile: fixture.serverKey, atomically: true, encoding: .utf8)
            #expect(throws: TLSError.self) { try credentials.reload() }
            let after = try await curl(port, fixture, ["/hello"])
            #expect(after.status == 0 && after.stdout.contains("world"), "\(after.stderr)")
        }
    }
}
