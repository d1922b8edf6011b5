import Foundation
import Glibc

/// Docker's side of the remote driver protocol: one HTTP/1.1 POST per connection over the plugin's Unix socket,
/// with the headers dockerd sends (`Accept: application/vnd.docker.plugins.v1.2+json`).
struct DockerPluginClient {
    let path: String

    struct Answer {
        var status: Int
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var err: String { json["Err"] as? String ?? "" }
    }

    /// Calls `/name` with `body` (none when nil) and `contentType` (none when nil, as dockerd sends), on a thread
    /// of its own (the daemon's handlers need the cooperative pool).
    func call(_ name: String, _ body: String? = nil, contentType: String? = nil, method: String = "POST")
        async throws -> Answer
    {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result { try blockingCall(name, body, contentType: contentType, method: method) })
            }.start()
        }
    }

    private func blockingCall(_ name: String, _ body: String?, contentType: String?, method: String) throws -> Answer {
        var head = "\(method) /\(name) HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n"
        head += "Accept: application/vnd.docker.plugins.v1.2+json\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        let bytes = Array((body ?? "").utf8)
        head += "Content-Length: \(bytes.count)\r\n\r\n"
        let response = try exchange(Array(head.utf8) + bytes)
        guard let split = response.range(of: "\r\n\r\n"), let status = Int(response.split(separator: " ")[1]) else {
            throw POSIXError(.EBADMSG)
        }
        return Answer(status: status, body: String(response[split.upperBound...]))
    }

    private func exchange(_ request: [UInt8]) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var sent = 0
        while sent < request.count {
            let written = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw POSIXError(.EPIPE) }
            sent += written
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
