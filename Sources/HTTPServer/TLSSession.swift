import CLinux
import COpenSSL
import Glibc

/// One connection's TLS session (`SSL`) over its non-blocking socket, confined to the connection's event loop.
///
/// OpenSSL reads and writes the socket itself. When an operation cannot go on it says which readiness it waits
/// for (`SSL_ERROR_WANT_READ`/`WANT_WRITE`); the session keeps that per direction, and `interest(_:)` turns it
/// into the epoll events the connection registers: a read that waits for the socket to be writable adds EPOLLOUT,
/// a write that waits for it to be readable trades EPOLLOUT for EPOLLIN (level-triggered EPOLLOUT would spin).
final class TLSSession {
    private let ssl: OpaquePointer
    /// What the last read that could not go on waits for (EPOLLOUT), or 0.
    private(set) var readWaitsFor: UInt32 = 0
    /// What the last write that could not go on waits for (EPOLLIN), or 0.
    private(set) var writeWaitsFor: UInt32 = 0

    /// The outcome of a read or write.
    enum Outcome {
        case bytes(Int)
        /// Nothing now; the session waits for the readiness it recorded.
        case wouldBlock
        /// The peer closed the session (close_notify) or the connection (EOF).
        case closed
        /// A protocol error or a reset.
        case failed
    }

    /// The outcome of a handshake step.
    enum HandshakeStep {
        case established
        /// The handshake goes on when the socket has these epoll events.
        case waits(UInt32)
        case failed
    }

    init?(context: TLSServerContext, fd: Int32) {
        guard let ssl = SSL_new(context.pointer) else { return nil }
        self.ssl = ssl
        guard SSL_set_fd(ssl, fd) == 1 else { return nil }
        SSL_set_accept_state(ssl)
    }

    deinit {
        SSL_free(ssl)
    }

    /// Goes on with the handshake as far as the socket allows.
    func handshake() -> HandshakeStep {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .established }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .waits(EPOLLIN.rawValue)
        case SSL_ERROR_WANT_WRITE: return .waits(EPOLLOUT.rawValue)
        default:
            ERR_clear_error()
            return .failed
        }
    }

    /// Decrypts what has arrived into `buffer`: at most one record (16 KiB) per call.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Outcome {
        var count = 0
        if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count) == 1 {
            readWaitsFor = 0
            return .bytes(count)
        }
        return failure(SSL_get_error(ssl, 0), waits: &readWaitsFor)
    }

    /// Encrypts and sends as much of `bytes` as the socket takes; a partial write is retried with the rest
    /// (`SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER`: the rest may have moved).
    func write(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        var count = 0
        if SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &count) == 1 {
            writeWaitsFor = 0
            return .bytes(count)
        }
        return failure(SSL_get_error(ssl, 0), waits: &writeWaitsFor)
    }

    private func failure(_ error: Int32, waits: inout UInt32) -> Outcome {
        switch error {
        case SSL_ERROR_WANT_READ:
            waits = EPOLLIN.rawValue
            return .wouldBlock
        case SSL_ERROR_WANT_WRITE:
            waits = EPOLLOUT.rawValue
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            // SSL_ERROR_SYSCALL (EOF without close_notify, a reset) or SSL_ERROR_SSL (a protocol error).
            ERR_clear_error()
            return .failed
        }
    }

    /// Whether a read stopped at a record boundary with more decrypted bytes still held by OpenSSL.
    var hasPendingPlaintext: Bool { SSL_pending(ssl) > 0 }

    /// The epoll events to register, from those the plain connection would want.
    func interest(_ plain: UInt32) -> UInt32 {
        var wanted = plain
        if plain & EPOLLOUT.rawValue != 0 && writeWaitsFor == EPOLLIN.rawValue {
            wanted = (wanted & ~EPOLLOUT.rawValue) | EPOLLIN.rawValue
        }
        if plain & EPOLLIN.rawValue != 0 && isReadWaitingForWritable { wanted |= EPOLLOUT.rawValue }
        return wanted
    }

    /// The last read could not go on until the socket is writable.
    var isReadWaitingForWritable: Bool { readWaitsFor == EPOLLOUT.rawValue }

    /// Sends close_notify, best effort (one non-blocking attempt), before the socket is half-closed.
    func sendCloseNotify() {
        if SSL_shutdown(ssl) < 0 { ERR_clear_error() }
    }

    /// The client's certificate, when it sent one and it was verified.
    var clientCertificate: ClientCertificate? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(certificate) }
        guard SSL_get_verify_result(ssl) == X509_V_OK else { return nil }
        return ClientCertificate(
            commonName: Self.commonName(certificate), subjectAlternativeNames: Self.alternativeNames(certificate))
    }

    private static func commonName(_ certificate: OpaquePointer) -> String? {
        guard let subject = X509_get_subject_name(certificate) else { return nil }
        let index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(subject, index) else { return nil }
        return text(X509_NAME_ENTRY_get_data(entry))
    }

    private static func alternativeNames(_ certificate: OpaquePointer) -> [String] {
        guard let names = sriovd_subject_alt_names(certificate) else { return [] }
        defer { sriovd_general_names_free(names) }
        var result: [String] = []
        for index in 0..<sriovd_general_names_count(names) {
            guard let name = sriovd_general_name_at(names, index) else { continue }
            switch name.pointee.type {
            case GEN_DNS: text(name.pointee.d.dNSName).map { result.append("dns:" + $0) }
            case GEN_EMAIL: text(name.pointee.d.rfc822Name).map { result.append("email:" + $0) }
            case GEN_URI: text(name.pointee.d.uniformResourceIdentifier).map { result.append("uri:" + $0) }
            case GEN_IPADD: address(name.pointee.d.iPAddress).map { result.append("ip:" + $0) }
            default: continue
            }
        }
        return result
    }

    /// An ASN.1 string's bytes as text, or nil when it holds a control character (a name must not blur a log
    /// line or the audit).
    private static func text(_ string: UnsafePointer<ASN1_STRING>?) -> String? {
        guard let string, let data = ASN1_STRING_get0_data(string) else { return nil }
        let bytes = UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(string)))
        guard !bytes.isEmpty, !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func text(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        text(UnsafePointer(string))
    }

    private static func address(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let string, let data = ASN1_STRING_get0_data(string) else { return nil }
        let length = Int(ASN1_STRING_length(string))
        guard length == 4 || length == 16 else { return nil }
        var output = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(length == 4 ? AF_INET : AF_INET6, data, &output, socklen_t(output.count)) != nil else {
            return nil
        }
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
