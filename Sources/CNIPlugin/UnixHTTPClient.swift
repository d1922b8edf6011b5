import CLinux
import Glibc

/// A small HTTP/1.1 client over a Unix stream socket: one request per connection (`Connection: close`), the body
/// framed by `Content-Length` (RFC 9112 §6.3), every wait bounded by the socket's send and receive timeouts.
public struct UnixHTTPClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// Why no response came: the socket could not be reached, or the exchange broke off.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var errno: Int32
        public var operation: String
        public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
    }

    public let path: String
    public let timeout: Duration

    public init(path: String, timeout: Duration = .seconds(30)) {
        self.path = path
        self.timeout = timeout
    }

    public func request(
        _ method: String, _ target: String, body: [UInt8]? = nil, headers: [(String, String)] = []
    ) throws(Failure) -> Response {
        let fd = try connect()
        defer { close(fd) }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: sriovd\r\nConnection: close\r\nUser-Agent: sriovd-cni\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method == "POST" || method == "PUT" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        try sendAll(fd, Array(head.utf8) + (body ?? []))
        return try Self.parse(try receiveAll(fd))
    }

    private func connect() throws(Failure) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(errno: errno, operation: "socket(AF_UNIX)") }
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        let size = socklen_t(MemoryLayout<timeval>.size)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, size)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, size)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw Failure(errno: ENAMETOOLONG, operation: "connect(\(path))")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw Failure(errno: code, operation: "connect(\(path))")
        }
        return fd
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw Failure(errno: errno == EAGAIN ? ETIMEDOUT : errno, operation: "send")
            }
            offset += sent
        }
    }

    /// Reads until the peer closes (the request said `Connection: close`), or until the framed body is complete.
    private func receiveAll(_ fd: Int32) throws(Failure) -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(errno: errno == EAGAIN ? ETIMEDOUT : errno, operation: "recv")
            }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
            if let length = Self.completeLength(data), data.count >= length { return Array(data.prefix(length)) }
        }
    }

    /// The whole message's length once the head is in and says `Content-Length`; nil before.
    static func completeLength(_ data: [UInt8]) -> Int? {
        guard let end = headEnd(data) else { return nil }
        let head = String(decoding: data[..<end], as: UTF8.self)
        for line in head.split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length",
                let length = Int(parts[1].trimmedSpaces())
            {
                return end + 4 + length
            }
        }
        return nil
    }

    static func headEnd(_ data: [UInt8]) -> Int? {
        guard data.count >= 4 else { return nil }
        for index in 0...(data.count - 4)
        where data[index] == 13 && data[index + 1] == 10 && data[index + 2] == 13 && data[index + 3] == 10 {
            return index
        }
        return nil
    }

    static func parse(_ data: [UInt8]) throws(Failure) -> Response {
        guard let end = headEnd(data) else {
            throw Failure(errno: EPROTO, operation: "an HTTP response without a head")
        }
        let lines = String(decoding: data[..<end], as: UTF8.self).split(separator: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw Failure(errno: EPROTO, operation: "a malformed HTTP status line")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 {
                headers.append((String(parts[0]), String(parts[1]).trimmedSpaces()))
            }
        }
        return Response(status: status, headers: headers, body: Array(data[(end + 4)...]))
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (optional whitespace, RFC 9110 §5.6.3).
    func trimmedSpaces() -> String {
        let characters: Set<Character> = [" ", "\t"]
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
