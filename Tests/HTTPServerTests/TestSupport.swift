import CLinux
import Glibc
import Logging
import Testing
import Threading

@testable import HTTPServer

/// A response as a test client reads it.
struct ClientResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

struct ClientError: Error, CustomStringConvertible {
    var description: String
}

/// A blocking client on a raw socket, with a receive timeout so a broken server fails the test instead of
/// hanging it.
final class TestClient: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32, timeout: Duration = .seconds(5)) {
        self.fd = fd
        setTimeout(timeout)
    }

    convenience init(port: UInt16, timeout: Duration = .seconds(5)) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw ClientError(description: "connect: \(code)")
        }
        self.init(fd: fd, timeout: timeout)
    }

    /// Connects to a Unix stream socket at `path`.
    convenience init(unixPath path: String, timeout: Duration = .seconds(5)) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket: \(errno)") }
        var address = sockaddr_un()
        let length = try Socket.unixAddress(path, into: &address)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw ClientError(description: "connect \(path): \(code)")
        }
        self.init(fd: fd, timeout: timeout)
    }

    deinit { close(fd) }

    func setTimeout(_ timeout: Duration) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw ClientError(description: "send: \(errno)")
            }
            offset += sent
        }
    }

    /// Reads more bytes; false on EOF, timeout or error.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return true
            }
            if count < 0 && errno == EINTR { continue }
            return false
        }
    }

    /// Reads one response. `bodyless` for responses to HEAD.
    func readResponse(bodyless: Bool = false) async throws -> ClientResponse {
        try await offPool { try self.readResponseBlocking(bodyless: bodyless) }
    }

    func readResponseBlocking(bodyless: Bool = false) throws -> ClientResponse {
        while true {
            if let end = headEnd() {
                let head = String(decoding: buffer[0..<end], as: UTF8.self)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst()
                let parts = statusLine.split(separator: " ", maxSplits: 2)
                guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else {
                    throw ClientError(description: "bad status line: \(statusLine)")
                }
                let headers = lines.filter { !$0.isEmpty }.map { line -> (name: String, value: String) in
                    let colon = line.firstIndex(of: ":")!
                    return (
                        name: String(line[..<colon]),
                        value: String(line[line.index(after: colon)...]).trimmingCharacters(in: " ")
                    )
                }
                var response = ClientResponse(status: status, headers: headers, body: [])
                let length = bodyless ? 0 : Int(response.header("content-length") ?? "0") ?? 0
                while buffer.count < end + 4 + length {
                    guard fill() else { throw ClientError(description: "connection ended inside a body") }
                }
                response.body = Array(buffer[(end + 4)..<(end + 4 + length)])
                buffer.removeFirst(end + 4 + length)
                return response
            }
            guard fill() else {
                throw ClientError(
                    description: "connection ended or timed out before a response (\(buffer.count) bytes)")
            }
        }
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }

    /// True if the server closes the connection (EOF or reset) before the timeout; any bytes are discarded.
    func waitForClose() async -> Bool {
        (try? await offPool { self.waitForCloseBlocking() }) ?? false
    }

    func waitForCloseBlocking() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { continue }
            if count == 0 { return true }
            if errno == EINTR { continue }
            return errno == ECONNRESET
        }
    }

    /// True if nothing arrives and the connection stays open for `duration`.
    func staysQuiet(for duration: Duration) async -> Bool {
        (try? await offPool { self.staysQuietBlocking(for: duration) }) ?? false
    }

    func staysQuietBlocking(for duration: Duration) -> Bool {
        setTimeout(duration)
        defer { setTimeout(.seconds(5)) }
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, 0)
        return count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var slice = Substring(self)
        while slice.first == set { slice.removeFirst() }
        while slice.last == set { slice.removeLast() }
        return String(slice)
    }

    func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

/// The handler the connection and server tests use. `deferredStarts` counts the `/deferred/{ms}` handlers that
/// have begun.
func makeTestRouter(deferredStarts: Locked<Int> = Locked(0)) -> Router {
    var router = Router()
    router.add(.GET, "/hello") { _, _, _ in
        .response(.json(.ok, Array(#"{"hello":"world"}"#.utf8)))
    }
    router.add(.POST, "/echo") { request, _, _ in
        var response = HTTPResponse(status: .ok, body: request.body)
        response.headers.add("X-Body-Length", "\(request.body.count)")
        return .response(response)
    }
    router.add(.GET, "/id") { _, context, _ in
        .response(HTTPResponse(status: .ok, body: Array(context.requestID.utf8)))
    }
    router.add(.GET, "/items/{name}") { _, _, parameters in
        .response(HTTPResponse(status: .ok, body: Array((parameters["name"] ?? "-").utf8)))
    }
    router.add(.DELETE, "/items/{name}") { _, _, _ in .response(HTTPResponse(status: .noContent)) }
    router.add(.GET, "/inline/{n}") { _, _, parameters in
        .response(HTTPResponse(status: .ok, body: Array("inline \(parameters["n"] ?? "")".utf8)))
    }
    router.add(.GET, "/deferred/{ms}") { _, _, parameters in
        let milliseconds = Int(parameters["ms"] ?? "0") ?? 0
        return .deferred {
            deferredStarts.withLock { $0 += 1 }
            // Deliberate: a handler that takes this long is what these routes are for.
            try? await Task.sleep(for: .milliseconds(milliseconds))
            return HTTPResponse(status: .ok, body: Array("deferred \(milliseconds)".utf8))
        }
    }
    router.add(.GET, "/big/{mib}") { _, _, parameters in
        let size = (Int(parameters["mib"] ?? "1") ?? 1) * 1024 * 1024
        return .response(HTTPResponse(status: .ok, body: [UInt8](repeating: 0x61, count: size)))
    }
    router.add(.GET, "/close") { _, _, _ in
        .response(HTTPResponse(status: .ok, headers: ["Connection": "close"], body: Array("bye".utf8)))
    }
    return router
}

/// Runs `body` against a server on 127.0.0.1:0, then shuts the server down.
func withServer(
    configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    handler: any HTTPHandler = makeTestRouter(),
    accessLog: (@Sendable (HTTPRequest, HTTPResponse, RequestContext, Duration) -> Void)? = nil,
    _ body: (HTTPServer, UInt16) async throws -> Void
) async throws {
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    configure(&configuration)
    let server = HTTPServer(
        configuration: configuration,
        handler: handler,
        logger: Logger(label: "test"),
        accessLog: accessLog
    )
    let address = try server.start()
    do {
        try await body(server, address.port)
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
}

/// Raises the soft open-file limit to the hard limit and returns the new soft limit.
func raiseFileLimit() -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}

/// One request on a new connection.
func get(_ path: String, port: UInt16, headers: String = "") async throws -> ClientResponse {
    let client = try TestClient(port: port)
    try client.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\(headers)\r\n")
    return try await client.readResponse()
}

/// Runs blocking socket code on its own thread, so tests never block the cooperative pool that `.deferred`
/// handlers need (it has only as many threads as cores).
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        do {
            try DetachedThread.spawn(name: "test-client") {
                continuation.resume(with: Result { try body() })
            }
        } catch {
            continuation.resume(throwing: error)
        }
    }
}

/// Polls `condition` every `interval` until it holds; throws, naming `what`, when `timeout` passes first.
func waitUntil(
    timeout: Duration = .seconds(5), interval: Duration = .milliseconds(2), _ what: String,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: what, timeout: timeout) }
        try await Task.sleep(for: interval)
    }
}

struct WaitTimedOut: Error, CustomStringConvertible {
    var what: String
    var timeout: Duration
    var description: String { "waited \(timeout) in vain until \(what)" }
}
