import COpenSSL
import Foundation
import Testing

@testable import HTTPServer

/// A scratch folder of certificates made with `openssl req` for one test: a CA, a server certificate for
/// 127.0.0.1 and localhost, a client certificate (CN `node-agent`, SAN `dns:agent.example`) from the same CA, and
/// one from a CA the server does not trust.
struct TLSFixture {
    let folder: String
    var caPath: String { folder + "/ca.pem" }
    var serverCertificate: String { folder + "/server.pem" }
    var serverKey: String { folder + "/server.key" }
    var clientCertificate: String { folder + "/client.pem" }
    var clientKey: String { folder + "/client.key" }
    var rogueCertificate: String { folder + "/rogue.pem" }
    var rogueKey: String { folder + "/rogue.key" }

    init() throws {
        folder = NSTemporaryDirectory() + "sriovd-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try makeCertificate("ca", subject: "/CN=sriovd-test-ca")
        try makeCertificate("rogue-ca", subject: "/CN=someone-else")
        try issueServerCertificate(commonName: "localhost")
        try makeCertificate(
            "client", subject: "/CN=node-agent", issuer: "ca",
            extensions: ["subjectAltName=DNS:agent.example,email:ops@example.com", "basicConstraints=CA:FALSE"])
        try makeCertificate(
            "rogue", subject: "/CN=node-agent", issuer: "rogue-ca", extensions: ["basicConstraints=CA:FALSE"])
    }

    /// (Re)writes the server's certificate and key, issued by the CA.
    func issueServerCertificate(commonName: String) throws {
        try makeCertificate(
            "server", subject: "/CN=\(commonName)", issuer: "ca",
            extensions: ["subjectAltName=IP:127.0.0.1,DNS:localhost", "basicConstraints=critical,CA:FALSE"])
    }

    /// `openssl req -x509` with a new P-256 key: self-signed, or signed by `issuer`'s key.
    private func makeCertificate(
        _ name: String, subject: String, issuer: String? = nil, extensions: [String] = []
    ) throws {
        var arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-keyout", "\(folder)/\(name).key", "-out", "\(folder)/\(name).pem", "-subj", subject,
        ]
        if let issuer { arguments += ["-CA", "\(folder)/\(issuer).pem", "-CAkey", "\(folder)/\(issuer).key"] }
        for option in extensions { arguments += ["-addext", option] }
        let result = try Tool.run("openssl", arguments)
        guard result.status == 0 else { throw ClientError(description: "openssl req: \(result.stderr)") }
    }

    func credentials(clientCA: Bool = false) throws -> TLSCredentials {
        try TLSCredentials(
            certificatePath: serverCertificate, keyPath: serverKey, clientCAPath: clientCA ? caPath : nil)
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }
}

/// A real client program run to its end.
enum Tool {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `tool` (found on PATH) with `arguments`, feeding it `input`. A missing tool throws: the test fails.
    /// With `holdingInputFor`, its input stays open (so that the tool does not take EOF for "quit") and it is
    /// killed when it has not ended within that many seconds.
    static func run(_ tool: String, _ arguments: [String], input: String? = nil, holdingInputFor seconds: Int? = nil)
        throws -> Result
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = (seconds.map { ["timeout", "\($0)"] } ?? []) + [tool] + arguments
        let output = Pipe()
        let errors = Pipe()
        let stdin = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        if seconds == nil { try stdin.fileHandleForWriting.close() }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
        if process.terminationStatus == 127 { throw ClientError(description: "\(tool) is not installed") }
        return Result(
            status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
            stderr: String(decoding: err, as: UTF8.self))
    }

    /// `run` on its own thread, off the cooperative pool.
    static func runOffPool(
        _ tool: String, _ arguments: [String], input: String? = nil, holdingInputFor seconds: Int? = nil
    ) async throws -> Result {
        try await offPool { try run(tool, arguments, input: input, holdingInputFor: seconds) }
    }
}

/// The first flight of a real TLS client (OpenSSL's, through memory BIOs): the bytes of a ClientHello record,
/// for tests that send a handshake slowly or cut it short.
func makeClientHello() throws -> [UInt8] {
    guard let context = SSL_CTX_new(TLS_client_method()) else { throw ClientError(description: "SSL_CTX_new") }
    defer { SSL_CTX_free(context) }
    guard let ssl = SSL_new(context) else { throw ClientError(description: "SSL_new") }
    defer { SSL_free(ssl) }
    let incoming = BIO_new(BIO_s_mem())
    let outgoing = BIO_new(BIO_s_mem())
    SSL_set_bio(ssl, incoming, outgoing)
    SSL_set_connect_state(ssl)
    _ = SSL_do_handshake(ssl)
    var bytes = [UInt8](repeating: 0, count: 16 * 1024)
    let count = BIO_read(outgoing, &bytes, Int32(bytes.count))
    guard count > 5, bytes[0] == 0x16 else { throw ClientError(description: "no ClientHello was written") }
    return Array(bytes[0..<Int(count)])
}

/// A router that says who the TLS client is.
func makeTLSTestRouter() -> Router {
    var router = makeTestRouter()
    router.add(.GET, "/whoami") { _, context, _ in
        let names = context.clientCertificate?.names.joined(separator: ",") ?? "no certificate"
        return .response(HTTPResponse(status: .ok, body: Array(names.utf8)))
    }
    return router
}
