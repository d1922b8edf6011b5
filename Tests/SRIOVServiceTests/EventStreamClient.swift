import Foundation
import Glibc

/// A Server-Sent Events client over a real TCP socket: sends `GET /events...`, reads the head, then parses events
/// (WHATWG HTML: lines `id:`, `event:`, `data:`, comments `:`, a blank line ends an event) as they arrive.
final class EventStreamClient {
    struct Event {
        var id: Int64?
        var type: String
        var data: String

        var object: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
        }
    }

    private let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var status = 0
    private(set) var headers: [String: String] = [:]
    private(set) var comments = 0

    /// Connects and sends the request. `receiveBuffer`: a small one makes a slow reader.
    init(port: UInt16, path: String = "/events", headers extra: [String: String] = [:], receiveBuffer: Int32? = nil)
        throws
    {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        for (name, value) in extra { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw POSIXError(.EPIPE) }
    }

    deinit { close(fd) }

    /// Reads the status line and headers.
    func readHead() throws {
        let end = try readUntil(Array("\r\n\r\n".utf8))
        let head = String(decoding: buffer[..<end], as: UTF8.self)
        buffer.removeFirst(end + 4)
        var lines = head.components(separatedBy: "\r\n")
        status = Int(lines.removeFirst().split(separator: " ")[1]) ?? 0
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
    }

    /// The next event (comments and `retry:` skipped); nil when the server closed the stream.
    func next() throws -> Event? {
        while true {
            guard let end = try? readUntil([10, 10]) else { return nil }
            let block = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeFirst(end + 2)
            var event = Event(id: nil, type: "message", data: "")
            var isEvent = false
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(":") { comments += 1 }
                if line.hasPrefix("id: ") { event.id = Int64(line.dropFirst(4)) }
                if line.hasPrefix("event: ") {
                    event.type = String(line.dropFirst(7))
                    isEvent = true
                }
                if line.hasPrefix("data: ") { event.data += line.dropFirst(6) }
            }
            if isEvent { return event }
        }
    }

    private func readUntil(_ marker: [UInt8]) throws -> Int {
        var searchFrom = 0
        while true {
            if buffer.count >= marker.count {
                for i in searchFrom...(buffer.count - marker.count) where buffer[i] == marker[0] {
                    if Array(buffer[i..<i + marker.count]) == marker { return i }
                }
                searchFrom = buffer.count - marker.count + 1
            }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { throw POSIXError(count == 0 ? .ECONNRESET : .ETIMEDOUT) }
            buffer += chunk[..<count]
        }
    }
}
