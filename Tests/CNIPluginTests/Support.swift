import Foundation
import Glibc
import Testing

/// The folder of the built binaries (`.build/<triple>/debug`), beside the test bundle.
let buildFolder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()

struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:] }
}

/// Runs a program to its end with `input` on stdin; output goes through files, so no pipe can fill up.
@discardableResult
func run(_ path: String, _ arguments: [String], environment: [String: String]? = nil, input: String = "") throws -> Run
{
    let folder = NSTemporaryDirectory() + "cni-run-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    for name in ["in", "out", "err"] { _ = FileManager.default.createFile(atPath: "\(folder)/\(name)", contents: nil) }
    try input.write(toFile: "\(folder)/in", atomically: false, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardInput = FileHandle(forReadingAtPath: "\(folder)/in")
    process.standardOutput = FileHandle(forWritingAtPath: "\(folder)/out")
    process.standardError = FileHandle(forWritingAtPath: "\(folder)/err")
    try process.run()
    process.waitUntilExit()
    return Run(
        status: process.terminationStatus,
        stdout: (try? String(contentsOfFile: "\(folder)/out", encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: "\(folder)/err", encoding: .utf8)) ?? "")
}

@discardableResult
func ip(_ arguments: String...) throws -> Run { try run("/sbin/ip", arguments) }

/// A link as `ip -j link show` reports it (in `namespace` when given), or nil when there is none.
func link(_ name: String, in namespace: String? = nil) throws -> [String: Any]? {
    let prefix = namespace.map { ["-n", $0] } ?? []
    let answer = try run("/sbin/ip", prefix + ["-j", "link", "show", "dev", name])
    guard answer.status == 0 else { return nil }
    return ((try? JSONSerialization.jsonObject(with: Data(answer.stdout.utf8))) as? [[String: Any]])?.first
}

/// The real `sriovd` on a simulated host, serving only its Unix socket.
final class SRIOVD {
    let folder: String
    let socket: String
    private var process: Process?

    init() throws {
        folder = NSTemporaryDirectory() + "sriovd-cni-test-\(UUID().uuidString)"
        socket = folder + "/sriovd.sock"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try start()
    }

    func start() throws {
        let process = Process()
        process.executableURL = buildFolder.appendingPathComponent("sriovd")
        process.arguments = [
            "serve", "--simulate", folder + "/sim", "--unix", socket, "--listen", "none", "--log-level", "warning",
        ]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        let log = folder + "/stderr.txt"
        if !FileManager.default.fileExists(atPath: log) {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
        }
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        self.process = process
        // Bounded poll: ready once /readyz answers 200 on the socket.
        for _ in 0..<200 {
            if (try? get("/readyz"))?.status == 200 { return }
            guard process.isRunning else { break }
            usleep(25_000)
        }
        throw POSIXError(.ETIMEDOUT)
    }

    func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
        self.process = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// A GET on the socket with curl: status and JSON body.
    func get(_ path: String) throws -> (status: Int, json: [String: Any]) {
        let answer = try run(
            "/usr/bin/curl", ["-s", "-w", "\n%{http_code}", "--unix-socket", socket, "http://sriovd" + path])
        let lines = answer.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let body = lines.dropLast().joined(separator: "\n")
        let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        return (status, json)
    }

    /// The allocations of an owner, every state.
    func allocations(owner: String) throws -> [[String: Any]] {
        let encoded = owner.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? owner
        return try get("/allocations?state=all&owner=\(encoded)").json["items"] as? [[String: Any]] ?? []
    }

    /// The simulated VF netdev names, read from the simulated sysfs: what the test's veths are called.
    func netdev(of vf: String) throws -> String {
        let net = URL(fileURLWithPath: folder + "/sim/bus/pci/devices/\(vf)/net").resolvingSymlinksInPath()
        return try #require(try FileManager.default.contentsOfDirectory(atPath: net.path).first)
    }
}

/// The plugin run as a runtime runs it: CNI_* in the environment, the configuration on stdin.
func cni(
    _ command: String, container: String? = nil, netns: String? = nil, ifname: String? = "net1",
    args: String = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0", config: [String: Any]
) throws -> Run {
    var environment = ["CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni", "CNI_ARGS": args, "PATH": "/usr/bin:/bin"]
    if let container { environment["CNI_CONTAINERID"] = container }
    if let netns { environment["CNI_NETNS"] = netns }
    if let ifname { environment["CNI_IFNAME"] = ifname }
    let input = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
    return try run(buildFolder.appendingPathComponent("sriovd-cni").path, [], environment: environment, input: input)
}

/// A network namespace and a veth pair whose host end carries a simulated VF's netdev name, removed at the end.
final class Sandbox {
    let name: String
    var path: String { "/run/netns/" + name }
    private var veths: [String] = []

    init(_ name: String) throws {
        self.name = name
        try? ip("netns", "del", name)
        let made = try ip("netns", "add", name)
        guard made.status == 0 else { throw POSIXError(.EPERM) }
    }

    /// Creates `netdev` (and a peer) in the host namespace with this MTU; returns its MAC.
    @discardableResult
    func veth(_ netdev: String, mtu: Int = 1500) throws -> String {
        try? ip("link", "del", netdev)
        let peer = "p" + String(netdev.suffix(13))
        let made = try ip("link", "add", netdev, "mtu", "\(mtu)", "type", "veth", "peer", "name", peer)
        guard made.status == 0 else { throw POSIXError(.EIO) }
        veths.append(netdev)
        return try #require(try link(netdev)?["address"] as? String)
    }

    deinit {
        try? ip("netns", "del", name)
        for veth in veths { try? ip("link", "del", veth) }
    }
}
