import Foundation
import Glibc

/// A minimal blocking HTTP/1.1 client over a real TCP socket, one keep-alive connection per instance.
final class TestClient {
    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        /// The status line's reason phrase.
        var reason = ""

        func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
        }

        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body)) }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        var items: [[String: Any]] { object["items"] as? [[String: Any]] ?? [] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// The local port of the connection.
    func localPort() throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw POSIXError(.EBADF) }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Sends one request and waits for its response on a thread of its own, so that tests never block the
    /// cooperative pool the server's deferred handlers need.
    func request(
        _ method: String, _ path: String, json: Any? = nil, body: String? = nil, headers: [String: String] = [:]
    ) async throws -> Response {
        let payload: [UInt8]
        if let json {
            payload = Array(try JSONSerialization.data(withJSONObject: json))
        } else {
            payload = Array((body ?? "").utf8)
        }
        let box = UncheckedBox(self)
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result { try box.value.blockingRequest(method, path, payload: payload, headers: headers) })
            }.start()
        }
    }

    func get(_ path: String) async throws -> Response { try await request("GET", path) }

    /// Sends `head` (the request line and header fields, each ending in CRLF) and `body` exactly as given, with
    /// `Content-Length` added when there is a body, and waits for the response on a thread of its own.
    func raw(_ head: String, body: String = "") async throws -> Response {
        let length = body.isEmpty ? "" : "Content-Length: \(body.utf8.count)\r\n"
        let bytes = Array((head + length + "\r\n" + body).utf8)
        let method = String(head.prefix { $0 != " " })
        let box = UncheckedBox(self)
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result {
                        try box.value.send(bytes)
                        return try box.value.readResponse(method: method)
                    })
            }.start()
        }
    }

    func blockingRequest(
        _ method: String, _ path: String, payload: [UInt8], headers: [String: String]
    ) throws -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !payload.isEmpty || method == "POST" || method == "PATCH" {
            head += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n"
        }
        head += "\r\n"
        try send(Array(head.utf8) + payload)
        return try readResponse(method: method)
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard sent > 0 else { throw POSIXError(.EPIPE) }
            offset += sent
        }
    }

    func readResponse(method: String = "GET") throws -> Response {
        let headerEnd = try readUntil([13, 10, 13, 10])
        let head = String(decoding: buffer[..<headerEnd], as: UTF8.self)
        buffer.removeFirst(headerEnd + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = Int(statusLine[1]) ?? 0
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append(
                (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        let length =
            method == "HEAD" ? 0 : Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
        while buffer.count < length { try fill() }
        let body = Array(buffer[..<length])
        buffer.removeFirst(length)
        let reason = statusLine.dropFirst(2).joined(separator: " ")
        return Response(status: status, headers: headers, body: body, reason: reason)
    }

    private func readUntil(_ marker: [UInt8]) throws -> Int {
        while true {
            if buffer.count >= marker.count {
                for i in 0...(buffer.count - marker.count) where Array(buffer[i..<i + marker.count]) == marker {
                    return i
                }
            }
            try fill()
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw POSIXError(.ECONNRESET) }
        buffer += chunk[..<count]
    }
}

/// Carries the client to its I/O thread; a client is used by one test at a time.
private struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
