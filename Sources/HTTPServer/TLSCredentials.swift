import COpenSSL

/// Why a TLS context could not be made: the step that failed and OpenSSL's own reasons.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let reasons: [String]

    public var description: String {
        reasons.isEmpty ? operation : "\(operation): \(reasons.joined(separator: "; "))"
    }

    /// Takes (and clears) the calling thread's OpenSSL error queue.
    static func make(_ operation: String) -> TLSError {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            reasons.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return TLSError(operation: operation, reasons: reasons)
    }
}

/// The certificate chain, private key and (optionally) client CA the TCP listener serves TLS 1.2 and 1.3 with.
///
/// `reload()` reads the files again and swaps the context in one step: connections accepted afterwards use the
/// new one, connections already open keep theirs. When the files cannot be read the context in force stays.
public final class TLSCredentials: Sendable {
    /// PEM: the server's certificate, then any intermediates.
    public let certificatePath: String
    /// PEM: the certificate's private key.
    public let keyPath: String
    /// PEM: the CA certificates that client certificates must chain to. When set, the server asks every client
    /// for a certificate; a client may send none (then it must authenticate otherwise), but one that does not
    /// verify ends the handshake.
    public let clientCAPath: String?
    private let current: Locked<TLSServerContext>

    public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil) throws(TLSError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        current = Locked(
            try TLSServerContext(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: clientCAPath))
    }

    /// Reads the certificate, key and client CA again; new connections use them from now on.
    public func reload() throws(TLSError) {
        let fresh = try TLSServerContext(
            certificatePath: certificatePath, keyPath: keyPath, clientCAPath: clientCAPath)
        current.withLock { $0 = fresh }
    }

    /// The context a connection accepted now handshakes with.
    var context: TLSServerContext { current.withLock { $0 } }
}

/// One OpenSSL server context (`SSL_CTX`): immutable once made, shared by the sessions made from it, freed when
/// the last of them is.
final class TLSServerContext: @unchecked Sendable {
    let pointer: OpaquePointer

    init(certificatePath: String, keyPath: String, clientCAPath: String?) throws(TLSError) {
        ERR_clear_error()
        guard let pointer = SSL_CTX_new(TLS_server_method()) else { throw TLSError.make("SSL_CTX_new") }
        self.pointer = pointer
        guard sriovd_SSL_CTX_configure_server(pointer) == 1 else { throw TLSError.make("TLS 1.2 as the minimum") }
        guard SSL_CTX_use_certificate_chain_file(pointer, certificatePath) == 1 else {
            throw TLSError.make("the certificate \(certificatePath)")
        }
        guard SSL_CTX_use_PrivateKey_file(pointer, keyPath, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError.make("the private key \(keyPath)")
        }
        guard SSL_CTX_check_private_key(pointer) == 1 else {
            throw TLSError.make("the private key \(keyPath) does not match the certificate \(certificatePath)")
        }
        if let clientCAPath { try requestClientCertificates(clientCAPath) }
    }

    /// Asks clients for a certificate issued by the CAs in `path` (named in the CertificateRequest), and verifies
    /// one that is sent. A session resumed from a ticket keeps the verified certificate, which needs a session id
    /// context.
    private func requestClientCertificates(_ path: String) throws(TLSError) {
        guard SSL_CTX_load_verify_locations(pointer, path, nil) == 1 else {
            throw TLSError.make("the client CA \(path)")
        }
        sriovd_SSL_CTX_set_client_CA_file(pointer, path)
        SSL_CTX_set_verify(pointer, SSL_VERIFY_PEER, nil)
        let name = Array("sriovd".utf8)
        SSL_CTX_set_session_id_context(pointer, name, UInt32(name.count))
    }

    deinit {
        SSL_CTX_free(pointer)
    }
}
