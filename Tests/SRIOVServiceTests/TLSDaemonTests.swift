import Foundation
import Glibc
import Testing

/// The built `sriovd` over TLS: plain HTTP beyond loopback refused without --insecure-http, client certificates
/// mapped to roles and named in the audit, tokens over TLS, the certificate re-read on SIGHUP. Real clients (curl,
/// `openssl s_client`), certificates made with `openssl req` in a scratch folder.
@Suite(.serialized) struct TLSDaemonTests {
    @Test func plainHTTPBeyondLoopbackNeedsInsecureHTTPAndSaysWhy() async throws {
        let tokens = try Self.tokensFile(admin: false).file
        let refused = try await DaemonProcess.run(["serve", "--listen", "0.0.0.0:0", "--tokens", tokens])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("would serve plain HTTP"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--tls-cert") && refused.stderr.contains("--insecure-http"))

        let daemon = try await DaemonProcess.start(
            ["serve", "--listen", "0.0.0.0:0", "--tokens", tokens, "--insecure-http"])
        #expect(daemon.stderr.contains("--insecure-http: plain HTTP on a non-loopback address"), "\(daemon.stderr)")
        #expect(try await daemon.stop() == 0)
    }

    @Test func clientCertificatesAndTokensOverTLSAndSIGHUPReloadsTheCertificate() async throws {
        let (tokens, token) = try Self.tokensFile(admin: true)
        let folder = try Self.makeCertificates()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let daemon = try await DaemonProcess.start([
            "serve", "--listen", "0.0.0.0:0", "--tokens", tokens, "--tls-cert", folder + "/server.pem",
            "--tls-key", folder + "/server.key", "--tls-client-ca", folder + "/ca.pem",
            "--tls-client-role", "cn:node-agent=operator",
        ])
        let port = try #require(daemon.port)
        #expect(daemon.stdout.contains("listening on https://"))
        let base = ["-sS", "-m", "5", "--cacert", folder + "/ca.pem", "-w", "\n%{http_code}"]
        let agent = ["--cert", folder + "/agent.pem", "--key", folder + "/agent.key"]
        let url = "https://127.0.0.1:\(port)"

        // The agent's certificate maps to operator: it may allocate, and the audit names it.
        let created = try await Self.curl(
            base + agent + [
                "-H", "Content-Type: application/json", "-d", #"{"owner":"vm:tls","pf":"0000:3b:00.0"}"#,
                url + "/allocations",
            ])
        #expect(created.hasSuffix("\n201"), "\(created)")
        let audit = try await Self.curl(base + agent + [url + "/audit?action=allocation.create"])
        #expect(audit.contains(#""actor":"cert:cn:node-agent""#), "\(audit)")
        // Operator is not admin.
        let resize = try await Self.curl(
            base + agent + [
                "-X", "POST", "-H", "Content-Type: application/json", "-d", #"{"count":2}"#,
                url + "/pfs/0000:3b:00.0/vfs",
            ])
        #expect(resize.hasSuffix("\n403"), "\(resize)")
        // A certificate no rule names has no role; no credential at all is 401; a token works over TLS.
        let stranger = ["--cert", folder + "/stranger.pem", "--key", folder + "/stranger.key"]
        #expect(try await Self.curl(base + stranger + [url + "/pfs"]).hasSuffix("\n403"))
        #expect(try await Self.curl(base + [url + "/pfs"]).hasSuffix("\n401"))
        let bearer = ["-H", "Authorization: Bearer \(token)"]
        #expect(try await Self.curl(base + bearer + [url + "/pfs"]).hasSuffix("\n200"))

        // SIGHUP: connections accepted afterwards get the new certificate.
        try Self.issueServerCertificate(in: folder, commonName: "reloaded")
        daemon.signal(SIGHUP)
        try await waitUntil("the re-read certificate is served") {
            try await Self.serverSubject(port: port, folder: folder).contains("CN = reloaded")
        }
        #expect(daemon.stderr.contains("TLS certificate and key re-read"))
        #expect(try await daemon.stop() == 0)
    }

    /// A tokens file with one token (admin or reader) and the token.
    private static func tokensFile(admin: Bool) throws -> (file: String, token: String) {
        let name = admin ? "root-admin" : "viewer"
        let created = try tool(
            DaemonProcess.binary.path, ["token", "create", name, "--role", admin ? "admin" : "reader"])
        let lines = created.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        let file = NSTemporaryDirectory() + "sriovd-tls-tokens-\(UUID().uuidString)"
        try (lines[1] + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return (file, lines[0])
    }

    /// A CA, the server's certificate for 127.0.0.1, and two client certificates from the CA: `agent` (CN
    /// node-agent) and `stranger`.
    private static func makeCertificates() throws -> String {
        let folder = NSTemporaryDirectory() + "sriovd-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try request(folder, "ca", subject: "/CN=sriovd-test-ca")
        try issueServerCertificate(in: folder, commonName: "localhost")
        try request(folder, "agent", subject: "/CN=node-agent", issuer: "ca")
        try request(folder, "stranger", subject: "/CN=stranger", issuer: "ca")
        return folder
    }

    private static func issueServerCertificate(in folder: String, commonName: String) throws {
        try request(
            folder, "server", subject: "/CN=\(commonName)", issuer: "ca",
            extensions: ["subjectAltName=IP:127.0.0.1,DNS:localhost"])
    }

    /// `openssl req -x509` with a new P-256 key, self-signed or signed by `issuer`.
    private static func request(
        _ folder: String, _ name: String, subject: String, issuer: String? = nil, extensions: [String] = []
    ) throws {
        var arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-keyout", "\(folder)/\(name).key", "-out", "\(folder)/\(name).pem", "-subj", subject,
        ]
        if let issuer { arguments += ["-CA", "\(folder)/\(issuer).pem", "-CAkey", "\(folder)/\(issuer).key"] }
        if issuer != nil { arguments += ["-addext", "basicConstraints=critical,CA:FALSE"] }
        for option in extensions { arguments += ["-addext", option] }
        _ = try tool("openssl", arguments)
    }

    private static func serverSubject(port: UInt16, folder: String) async throws -> String {
        try await Task.detached {
            try tool("openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", folder + "/ca.pem"])
        }.value
    }

    private static func curl(_ arguments: [String]) async throws -> String {
        try await Task.detached { try tool("curl", arguments, allowFailure: true) }.value
    }

    struct ToolFailed: Error {
        var tool: String
        var status: Int32
    }

    /// Runs a program (a path, or a name found on PATH) to its end with empty input, returning its output. A
    /// missing program, or a failure unless allowed, throws: the test fails.
    @discardableResult
    private static func tool(_ name: String, _ arguments: [String], allowFailure: Bool = false) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: name.hasPrefix("/") ? name : "/usr/bin/env")
        process.arguments = name.hasPrefix("/") ? arguments : [name] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 || allowFailure && process.terminationStatus != 127 else {
            throw ToolFailed(tool: name, status: process.terminationStatus)
        }
        return String(decoding: data, as: UTF8.self)
    }
}
