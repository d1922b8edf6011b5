import Foundation
import Glibc
import HTTPServer
import HostSimulator
import Logging
import SRIOVCore
import SRIOVHardware
import SRIOVService
import SRIOVStore

/// The whole daemon in-process behind `AccessControl`: TCP on 127.0.0.1:0 requiring tokens, and a Unix socket.
final class SecuredDaemon {
    /// Plain tokens the tests present, by role; the daemon holds only their hashes.
    static let tokens: [Role: String] = [
        .reader: "reader-token-0123456789abcdef0123456789",
        .operator: "operator-token-0123456789abcdef01234567",
        .admin: "admin-token-0123456789abcdef0123456789ab",
    ]

    let directory: URL
    let store: Store
    let server: HTTPServer
    let router: Router
    let port: UInt16
    let socketPath: String

    /// `withTokens: false` is tokenless loopback mode, as `sriovd serve` starts without `--tokens` (give
    /// `anonymousTCPRole: .admin` with it).
    init(
        unixRoles: UnixRoleMap = UnixRoleMap(), anonymousTCPRole: Role? = nil, unixMode: UInt32 = 0o660,
        withTokens: Bool = true
    ) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-sec-\(UUID().uuidString)")
        try SimulatedHost.ensure(at: directory, profiles: SimulatedHost.defaultProfiles)
        let hardware = HardwareHost.simulated(at: directory)
        store = try Store(path: directory.appendingPathComponent("sriovd.db").path)
        let logger = Logger(label: "test")
        let core = ServiceCore(
            store: store, inventory: InventoryCache(scanner: HostScanner(sysfs: hardware.sysfs)),
            host: hardware, writeTimeout: .seconds(5), logger: logger)
        let readiness = Readiness(store: store)
        try await StartupRecovery(core: core).run()
        readiness.markReady()
        router = SRIOVAPI(core: core, readiness: readiness).makeRouter()
        let entries = Role.allCases.map { role in
            TokenEntry(name: "\(role)-bot", role: role, digest: TokenStore.digest(of: Self.tokens[role]!))
        }
        let handler = AccessControl(
            router: router, tokens: withTokens ? TokenStore(entries: entries) : nil, unixRoles: unixRoles,
            anonymousTCPRole: anonymousTCPRole)
        // Short enough for sun_path (108 bytes), unique per daemon.
        socketPath = "/tmp/sriovd-test-\(UUID().uuidString.prefix(8)).sock"
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.unixSocket = .init(path: socketPath, mode: unixMode)
        server = HTTPServer(
            configuration: configuration, handler: handler, logger: logger, accessLog: AccessLog.makeHook(writer: nil))
        port = try server.start().port
    }

    func client() throws -> TestClient { try TestClient(port: port) }

    func stop() async {
        await server.shutdown()
        store.close()
        try? FileManager.default.removeItem(at: directory)
    }

    static func bearer(_ role: Role) -> [String: String] { ["Authorization": "Bearer \(tokens[role]!)"] }

    /// The audit events after the one with id `after`, read from the SQLite file, oldest first.
    func auditEvents(after: Int64 = 0) throws -> [AuditEvent] {
        try store.read { try $0.auditEvents(AuditFilter(after: after, limit: AuditFilter.maximumLimit)) }
    }

    /// The id of the newest audit event, 0 when there is none.
    func lastAuditID() throws -> Int64 {
        var last: Int64 = 0
        while let next = try auditEvents(after: last).last?.id { last = next }
        return last
    }

    /// Every allocation in any state, read from the SQLite file.
    func allAllocations() throws -> [Allocation] {
        try store.read { try $0.allocations(AllocationFilter(state: nil, limit: AllocationFilter.maximumLimit)) }.items
    }
}

/// A blocking HTTP/1.1 client over a Unix socket: one request per connection (`Connection: close`), read to EOF,
/// run on a thread of its own so the cooperative pool stays free for the server's deferred handlers.
enum UnixTestClient {
    struct Response {
        var status: Int
        var head: String
        var body: [UInt8]

        var object: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        }
        var items: [[String: Any]] { object["items"] as? [[String: Any]] ?? [] }
    }

    static func request(
        _ path: String, _ method: String, _ target: String, body: String = "", headers: [String: String] = [:]
    ) async throws -> Response {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(
                    with: Result { try blocking(path, method, target, body: body, headers: headers) })
            }.start()
        }
    }

    static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .ECONNREFUSED)
        }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func blocking(
        _ path: String, _ method: String, _ target: String, body: String, headers: [String: String]
    ) throws -> Response {
        let fd = try connect(path)
        defer { close(fd) }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: local\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PATCH" {
            head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        let bytes = Array((head + "\r\n" + body).utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return try parse(readToEnd(fd))
    }

    static func readToEnd(_ fd: Int32) throws -> [UInt8] {
        var all: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return all }
            guard count > 0 else { throw POSIXError(.ETIMEDOUT) }
            all += chunk[..<count]
        }
    }

    /// Status line, head and body of one `Connection: close` response.
    static func parse(_ bytes: [UInt8]) throws -> Response {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw POSIXError(.EPROTO) }
        let head = String(text[..<split.lowerBound])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Response(status: status, head: head, body: Array(text[split.upperBound...].utf8))
    }
}
