import ArgumentParser
import FoundationEssentials
import HTTPServer
import Logging
import SRIOVService

/// TLS on the TCP listener, client certificates, and the explicit consent plain HTTP beyond loopback needs.
struct TLSOptions: ParsableArguments {
    @Option(
        help: "PEM certificate chain: serve TLS 1.2 and 1.3 on the TCP listener (with --tls-key). Re-read on SIGHUP.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert. Re-read on SIGHUP.")
    var tlsKey: String?

    @Option(
        help: """
            PEM CA certificates: ask TLS clients for a certificate these CAs issued (mTLS); --tls-client-role maps \
            its names to roles. A client may send none and use a token instead.
            """)
    var tlsClientCa: String?

    @Option(
        help: """
            Roles of client certificates: cn:NAME=ROLE, dns:NAME=ROLE, email:, uri:, ip: (repeatable; @FILE reads \
            rules from a file). The best rule naming any of the certificate's names applies; none: 403.
            """)
    var tlsClientRole: [String] = []

    @Flag(
        help: """
            Serve plain HTTP on a --listen address that is not loopback: tokens and data cross the network \
            unencrypted. Without it such a listener needs --tls-cert and --tls-key.
            """)
    var insecureHttp = false

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together.")
        }
        if tlsClientCa != nil && tlsCert == nil { throw ValidationError("--tls-client-ca needs --tls-cert.") }
        if !tlsClientRole.isEmpty && tlsClientCa == nil {
            throw ValidationError("--tls-client-role needs --tls-client-ca.")
        }
    }

    /// Whether callers may prove who they are with a client certificate.
    var asksForClientCertificates: Bool { tlsClientCa != nil }

    /// Refuses a TCP listener beyond loopback that would serve plain HTTP without `--insecure-http`.
    func checkPlainHTTP(listen: String, isLoopback: Bool) throws(Serve.Refusal) {
        guard !isLoopback, tlsCert == nil, !insecureHttp else { return }
        throw Serve.Refusal(
            reason: """
                --listen \(listen) is not a loopback address and would serve plain HTTP, so bearer tokens and \
                every answer would cross the network unencrypted. Give --tls-cert FILE and --tls-key FILE, or \
                --insecure-http to accept that (behind a TLS-terminating proxy, or on a trusted network).
                """)
    }

    /// The certificate and key (and client CA), read now.
    func makeCredentials() throws(Serve.Refusal) -> TLSCredentials? {
        guard let tlsCert, let tlsKey else { return nil }
        do {
            return try TLSCredentials(certificatePath: tlsCert, keyPath: tlsKey, clientCAPath: tlsClientCa)
        } catch {
            throw Serve.Refusal(reason: "TLS: \(error)")
        }
    }

    /// The rules of --tls-client-role.
    func makeCertificateRoles() throws(Serve.Refusal) -> CertificateRoleMap {
        var rules: [String] = []
        for spec in tlsClientRole {
            guard spec.hasPrefix("@") else {
                rules.append(spec)
                continue
            }
            guard let text = try? String(contentsOfFile: String(spec.dropFirst()), encoding: .utf8) else {
                throw Serve.Refusal(reason: "--tls-client-role \(spec): the file cannot be read")
            }
            rules.append(text)
        }
        do {
            return try CertificateRoleMap(parsing: rules.joined(separator: ","))
        } catch {
            throw Serve.Refusal(reason: "--tls-client-role: \(error)")
        }
    }

    /// Logs why a plain HTTP listener beyond loopback is serving.
    func warnIfInsecure(address: SocketAddress, isLoopback: Bool, logger: Logger) {
        guard !isLoopback, tlsCert == nil else { return }
        logger.warning(
            """
            --insecure-http: plain HTTP on a non-loopback address; bearer tokens and answers cross the network \
            unencrypted (give --tls-cert and --tls-key to encrypt them)
            """,
            metadata: ["http.address": "\(address)"])
    }

    /// What SIGHUP does for TLS: reads the certificate and key again; connections accepted from now on use them.
    static func reload(_ credentials: TLSCredentials?, logger: Logger) {
        guard let credentials else { return }
        do {
            try credentials.reload()
            logger.notice(
                "TLS certificate and key re-read", metadata: ["tls.certificate": "\(credentials.certificatePath)"])
        } catch {
            logger.error(
                "TLS certificate and key not re-read; the previous ones stay in force", metadata: ["error": "\(error)"])
        }
    }
}
