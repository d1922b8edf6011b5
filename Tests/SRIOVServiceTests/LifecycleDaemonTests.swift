import Foundation
import Glibc
import Testing

/// The built `sriovd` binary as a child process: startup refusals, the environment, sd_notify, SIGHUP and SIGTERM.
/// `swift build` must have run (scripts/test.sh does).
@Suite(.serialized) struct LifecycleDaemonTests {
    @Test func refusesNonLoopbackTCPWithoutTokens() async throws {
        let viaFlag = try await DaemonProcess.run(["serve", "--listen", "0.0.0.0:0"])
        #expect(viaFlag.status == 2)
        #expect(viaFlag.stderr.contains("refusing to start"), "\(viaFlag.stderr)")
        #expect(viaFlag.stderr.contains("not a loopback address") && viaFlag.stderr.contains("--tokens"))
        #expect(!FileManager.default.fileExists(atPath: viaFlag.directory + "/sriovd.db"), "nothing was touched")

        let viaEnvironment = try await DaemonProcess.run(["serve"], environment: ["SRIOVD_LISTEN": "[::]:0"])
        #expect(viaEnvironment.status == 2)
        #expect(viaEnvironment.stderr.contains("--listen [::]:0 is not a loopback address"), "\(viaEnvironment.stderr)")

        let badFlag = try await DaemonProcess.run(["serve"], environment: ["SRIOVD_NO_RESTORE": "maybe"])
        #expect(badFlag.status != 0)
        #expect(badFlag.stderr.contains("SRIOVD_NO_RESTORE=maybe"))
    }

    @Test func theCommandLineWinsOverTheEnvironment() async throws {
        let daemon = try await DaemonProcess.start(
            ["serve", "--listen", "127.0.0.1:0"],
            environment: ["SRIOVD_LISTEN": "0.0.0.0:0", "SRIOVD_NO_ACCESS_LOG": "1", "SRIOVD_BOGUS": "x"])
        let client = try TestClient(port: try #require(daemon.port))
        #expect(try await client.get("/pfs").status == 200, "loopback without tokens: local development")
        let status = try await daemon.stop()
        #expect(status == 0)
        #expect(!daemon.stderr.contains("msg=request"), "SRIOVD_NO_ACCESS_LOG=1 turned the access log off")
        #expect(daemon.stderr.contains("ignoring SRIOVD_BOGUS"))
    }

    @Test func tokensFromTokenCreateWorkAndSIGHUPReloadsThem() async throws {
        let created = try await DaemonProcess.run(["token", "create", "ci-bot", "--role", "operator"], simulate: false)
        #expect(created.status == 0)
        let lines = created.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        #expect(lines.count == 2)
        let (token, line) = (lines[0], lines[1])
        #expect(line.hasPrefix("ci-bot operator ") && !line.contains(token))
        let admin = try await DaemonProcess.run(["token", "create", "root-admin", "--role", "admin"], simulate: false)
        let adminLine = admin.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)[1]

        let folder = NSTemporaryDirectory() + "sriovd-tokens-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let tokens = folder + "/tokens"
        try "# sriovd tokens\n\(adminLine)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        // Tokens make a non-loopback address acceptable; plain HTTP there needs --insecure-http.
        let daemon = try await DaemonProcess.start(
            ["serve", "--listen", "0.0.0.0:0", "--tokens", tokens, "--insecure-http"])
        let port = try #require(daemon.port)
        let bearer = ["Authorization": "Bearer \(token)"]
        #expect(try await TestClient(port: port).request("GET", "/pfs", headers: bearer).status == 401)

        try "\(adminLine)\n\(line)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try await waitUntil("the re-read token is accepted") {
            try await TestClient(port: port).request("GET", "/pfs", headers: bearer).status == 200
        }
        let allocation = try await TestClient(port: port).request(
            "POST", "/allocations", json: ["owner": "vm:hup", "pf": "0000:3b:00.0"], headers: bearer)
        #expect(allocation.status == 201)
        let audit = try await TestClient(port: port).request("GET", "/audit?action=allocation.create", headers: bearer)
        #expect(audit.items.last?["actor"] as? String == "ci-bot")

        // A broken file is refused; the tokens in force stay.
        try "ci-bot operator not-a-hash\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try await waitUntil("the broken file is refused") { daemon.stderr.contains("tokens file not re-read") }
        #expect(try await TestClient(port: port).request("GET", "/pfs", headers: bearer).status == 200)

        try "\(adminLine)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try await waitUntil("the removed token is refused") {
            try await TestClient(port: port).request("GET", "/pfs", headers: bearer).status == 401
        }
        #expect(try await daemon.stop() == 0)
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// A tokens file its group or others may write is refused at start and on SIGHUP, as OpenSSH refuses such key
    /// files; on SIGHUP the tokens in force stay.
    @Test func writableTokensFilesAreRefusedAtStartAndOnReload() async throws {
        let admin = try await DaemonProcess.run(["token", "create", "root-admin", "--role", "admin"], simulate: false)
        let adminLines = admin.stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        let (token, line) = (adminLines[0], adminLines[1])
        let folder = NSTemporaryDirectory() + "sriovd-tokens-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tokens = folder + "/tokens"
        try "\(line)\n".write(toFile: tokens, atomically: true, encoding: .utf8)

        #expect(chmod(tokens, 0o664) == 0)
        let refused = try await DaemonProcess.run(["serve", "--listen", "127.0.0.1:0", "--tokens", tokens])
        #expect(refused.status == 2)
        #expect(
            refused.stderr.contains(
                "refusing to start: the tokens file \(tokens): is writable by its group (mode 0664)"),
            "\(refused.stderr)")
        #expect(refused.stderr.contains("chmod go-w \(tokens)"))

        #expect(chmod(tokens, 0o600) == 0)
        let daemon = try await DaemonProcess.start(["serve", "--listen", "127.0.0.1:0", "--tokens", tokens])
        let port = try #require(daemon.port)
        let bearer = ["Authorization": "Bearer \(token)"]
        #expect(try await TestClient(port: port).request("GET", "/pfs", headers: bearer).status == 200)
        #expect(chmod(tokens, 0o602) == 0)
        daemon.signal(SIGHUP)
        try await waitUntil("the writable file is refused") { daemon.stderr.contains("tokens file not re-read") }
        #expect(daemon.stderr.contains("is writable by others (mode 0602)"), "\(daemon.stderr)")
        #expect(try await TestClient(port: port).request("GET", "/pfs", headers: bearer).status == 200)
        #expect(try await daemon.stop() == 0)
    }

    @Test(arguments: ["@sriovd-notify-", "/tmp/sriovd-notify-"])
    func notifiesSystemdReadyAndStopping(prefix: String) async throws {
        let name = prefix + UUID().uuidString.prefix(8)
        let listener = try NotifyListener(name)
        defer { listener.close() }
        let daemon = try await DaemonProcess.start(
            ["serve", "--listen", "127.0.0.1:0"], environment: ["NOTIFY_SOCKET": name])
        let ready = try await listener.receive()
        #expect(ready.contains("READY=1"), "\(ready)")
        let client = try TestClient(port: try #require(daemon.port))
        #expect(try await client.get("/readyz").status == 200, "READY=1 comes after startup recovery")
        daemon.signal(SIGTERM)
        #expect(try await listener.receive().contains("STOPPING=1"))
        #expect(try await daemon.stop() == 0)
    }

    @Test func sigtermMidRequestLosesNothing() async throws {
        let daemon = try await DaemonProcess.start(["serve", "--listen", "127.0.0.1:0"])
        let port = try #require(daemon.port)
        let body = Array(#"{"owner": "vm:graceful", "pf": "0000:3b:00.0"}"#.utf8)
        let head =
            "POST /allocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.count)\r\n\r\n"
        let client = try TestClient(port: port)
        // Half a request is in flight when SIGTERM arrives.
        try await onThread { try client.send(Array(head.utf8) + body[..<10]) }
        let clientPort = try client.localPort()
        try await waitUntil("the daemon has read the half request") {
            Self.serverHasRead(port: port, clientPort: clientPort)
        }
        daemon.signal(SIGTERM)
        try await waitUntil("new connections are refused") { (try? TestClient(port: port)) == nil }
        try await onThread { try client.send(Array(body[10...])) }
        let response = try await onThread { try client.readResponse(method: "POST") }
        #expect(response.status == 201, "\(response.text)")
        #expect(response.header("Connection") == "close")
        #expect(try await daemon.stop() == 0)
        #expect(daemon.stderr.contains("msg=stopped"))
        let accessLine = try #require(
            daemon.stderr.range(of: "http.route=/allocations http.status=201"), "the access log is on by default")
        let stopped = try #require(daemon.stderr.range(of: "msg=stopped"))
        #expect(accessLine.lowerBound < stopped.lowerBound, "the access log is written out before the daemon stops")

        let again = try await DaemonProcess.start(["serve", "--listen", "127.0.0.1:0"], directory: daemon.directory)
        let held = try await TestClient(port: try #require(again.port)).get("/allocations?owner=vm:graceful")
        #expect(held.items.count == 1, "the answered allocation survived the shutdown")
        #expect(try await again.stop() == 0)
        try? FileManager.default.removeItem(atPath: daemon.directory)
    }

    /// Whether the server side of the loopback connection from `clientPort` to `port` exists and has read
    /// everything sent to it (its receive queue in /proc/net/tcp is empty).
    static func serverHasRead(port: UInt16, clientPort: UInt16) -> Bool {
        // Read to the end: the file is made a page at a time, and one read may not hold every connection.
        let fd = open("/proc/net/tcp", O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        let table = String(decoding: bytes, as: UTF8.self)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1].hasSuffix(":" + hex4(port)), fields[2].hasSuffix(":" + hex4(clientPort))
            else { continue }
            return fields[4].hasSuffix(":00000000")
        }
        return false
    }

    private static func hex4(_ port: UInt16) -> String {
        let digits = String(port, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }
}

/// Runs blocking work on a thread of its own, off the cooperative pool.
func onThread<T>(_ work: @escaping () throws -> T) async throws -> T {
    let box = UncheckedSendable(work)
    return try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { UncheckedSendable(try box.value()) }) }.start()
    }.value
}

struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A datagram socket playing systemd's notify socket (a path, or `@name` in the abstract namespace).
final class NotifyListener: @unchecked Sendable {
    let fd: Int32
    let name: String

    init(_ name: String) throws {
        self.name = name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func receive() async throws -> String {
        let fd = self.fd
        return try await onThread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw POSIXError(.ETIMEDOUT) }
            return String(decoding: buffer[..<count], as: UTF8.self)
        }
    }

    func close() {
        Glibc.close(fd)
        if name.hasPrefix("/") { unlink(name) }
    }
}

/// The built binary, started on a simulated host in a temporary folder, its output in files.
final class DaemonProcess: @unchecked Sendable {
    let process = Process()
    let directory: String
    let stdoutPath: String
    let stderrPath: String
    private(set) var port: UInt16?

    /// `.build/<triple>/debug/sriovd`, beside the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("sriovd")
    }

    private init(
        _ arguments: [String], environment: [String: String], directory: String?, simulate: Bool
    ) throws {
        let directory = directory ?? NSTemporaryDirectory() + "sriovd-proc-\(UUID().uuidString)"
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        stdoutPath = directory + "/stdout.txt"
        stderrPath = directory + "/stderr.txt"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw POSIXError(.ENOENT)
        }
        process.executableURL = Self.binary
        process.arguments = arguments + (simulate ? ["--simulate", directory] : [])
        var merged = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("SRIOVD_") && $0.key != "NOTIFY_SOCKET"
        }
        merged.merge(environment) { $1 }
        process.environment = merged
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Runs to completion.
    static func run(_ arguments: [String], environment: [String: String] = [:], simulate: Bool = true) async throws
        -> (status: Int32, stdout: String, stderr: String, directory: String)
    {
        let daemon = try DaemonProcess(arguments, environment: environment, directory: nil, simulate: simulate)
        let status = try await daemon.waitForExit()
        return (status, daemon.stdout, daemon.stderr, daemon.directory)
    }

    /// Starts a daemon and waits until it is ready.
    static func start(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil)
        async throws -> DaemonProcess
    {
        let daemon = try DaemonProcess(arguments, environment: environment, directory: directory, simulate: true)
        for _ in 0..<300 {
            if let match = daemon.stdout.firstMatch(of: #/listening on https?://[^ ]*:(\d+)/#),
                daemon.stderr.contains("msg=ready")
            {
                daemon.port = UInt16(match.1)
                return daemon
            }
            guard daemon.process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        daemon.process.terminate()
        throw POSIXError(.ETIMEDOUT)
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// SIGTERM, then the exit status.
    func stop() async throws -> Int32 {
        if process.isRunning { signal(SIGTERM) }
        return try await waitForExit()
    }

    func waitForExit() async throws -> Int32 {
        for _ in 0..<600 {
            if !process.isRunning { return process.terminationStatus }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.interrupt()
        throw POSIXError(.ETIMEDOUT)
    }
}
