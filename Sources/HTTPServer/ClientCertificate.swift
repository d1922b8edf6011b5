/// What a TLS client proved with a certificate that the server's client CA verified during the handshake.
public struct ClientCertificate: Sendable, Hashable {
    /// The subject's common name (CN), when it has one.
    public let commonName: String?
    /// The subject alternative names, each as `KIND:VALUE`: `dns:node-7.example`, `email:ops@example.com`,
    /// `uri:spiffe://cluster/ns/x`, `ip:192.0.2.7`.
    public let subjectAlternativeNames: [String]

    public init(commonName: String?, subjectAlternativeNames: [String] = []) {
        self.commonName = commonName
        self.subjectAlternativeNames = subjectAlternativeNames
    }

    /// Every name the certificate holds, as `cn:NAME` followed by its subject alternative names.
    public var names: [String] {
        (commonName.map { ["cn:" + $0] } ?? []) + subjectAlternativeNames
    }
}
