import Foundation
import Testing

/// A real dockerd (Debian's docker.io 20.10 with containerd and runc) uses sriovd as its network driver. The test
/// starts dockerd itself, without systemd, with its data, exec root and API socket under a scratch folder; sriovd's
/// plugin socket goes where dockerd looks for plugins (`/run/docker/plugins/NAME.sock`, NAME unique per run); the
/// simulated VF's netdev is a real veth. Needs root and the tools `.ci/run` installs (it fails when one is missing).
@Suite(.serialized)
struct DockerdTests {
    /// The mlx5 PF's first VF: DockerPluginTests, which may run at the same time, use its second.
    static let vf = "0000:af:00.2"
    static let netdev = "ens3f0np0v0"
    static let tools = [
        "/usr/sbin/dockerd", "/usr/bin/docker", "/usr/bin/containerd", "/usr/sbin/runc", "/bin/busybox",
    ]

    @Test func containerGetsTheVFAndDockerRmReleasesIt() async throws {
        for tool in Self.tools {
            #expect(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: run .ci/run")
        }
        try #require(Self.tools.allSatisfy { FileManager.default.isExecutableFile(atPath: $0) })
        let dockerd = try Dockerd()
        defer { dockerd.stop() }
        try dockerd.importBusybox(tag: "sriovd-busybox")

        let driver = "sriovdtest" + String(UUID().uuidString.prefix(8)).lowercased()
        let pluginPath = "/run/docker/plugins/\(driver).sock"
        try FileManager.default.createDirectory(atPath: "/run/docker/plugins", withIntermediateDirectories: true)
        let veth = try Veth(Self.netdev)
        defer { veth.remove() }
        let mac = "02:aa:bb:cc:dd:01"

        var sriovd = try await TestDaemon(dockerPluginPath: pluginPath)
        defer { sriovd.removeFiles() }
        let created = try dockerd.docker([
            "network", "create", "-d", driver, "--subnet", "10.77.0.0/24", "--opt", "vf=\(Self.vf)",
            "--opt", "mtu=1400", "--opt", "mac=\(mac)", "--opt", "vlan=100", "net-\(driver)",
        ])
        #expect(created.status == 0, "\(created.output)")

        // sriovd restarts between network create and run: the network is in SQLite.
        await sriovd.stop()
        sriovd = try await TestDaemon(directory: sriovd.directory, dockerPluginPath: pluginPath)
        let run = try dockerd.docker([
            "run", "--name", "c-\(driver)", "--net", "net-\(driver)", "sriovd-busybox", "/bin/ip", "-o", "link", "show",
            "eth0",
        ])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("mtu 1400"), "\(run.output)")
        #expect(run.output.contains("link/ether \(mac)"), "\(run.output)")
        let allocations = try await sriovd.client().get("/allocations?owner=docker:&state=all")
        let client = try sriovd.client()
        let history = try await client.get("/audit?action=docker.endpoint.join")
        #expect((history.object["items"] as? [Any])?.count == 1, "\(allocations.object)")

        let removed = try dockerd.docker(["rm", "-f", "c-\(driver)"])
        #expect(removed.status == 0, "\(removed.output)")
        try await waitUntil("the endpoint's allocation is released") {
            let listed = try await client.get("/docker/networks")
            let items = listed.object["items"] as? [[String: Any]] ?? []
            return (items.first?["endpoints"] as? [Any])?.isEmpty == true
        }
        let released = try await client.get("/audit?action=allocation.release")
        let outcome = (released.object["items"] as? [[String: Any]])?.last?["outcome"] as? String
        #expect(outcome == "success")
        try await waitUntil("the VF netdev is back with its MTU") { (try? veth.mtu()) == 1500 }
        #expect(try dockerd.docker(["network", "rm", "net-\(driver)"]).status == 0)
        let networks = try await client.get("/docker/networks")
        #expect((networks.object["items"] as? [Any])?.isEmpty == true)
        await sriovd.stop()
    }
}

/// dockerd started by the test, its state under a scratch folder.
final class Dockerd {
    let folder: String
    private let process = Process()

    init() throws {
        folder = "/tmp/sriovd-dockerd-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/dockerd")
        process.arguments = [
            "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none", "--storage-driver=vfs",
            "--data-root", folder + "/data", "--exec-root", folder + "/exec", "--pidfile", folder + "/docker.pid",
            "-H", "unix://" + folder + "/docker.sock",
        ]
        FileManager.default.createFile(atPath: folder + "/dockerd.log", contents: nil)
        let log = FileHandle(forWritingAtPath: folder + "/dockerd.log")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while try docker(["version"]).status != 0 {
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw VethError(message: "dockerd did not start: \(self.log)")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    var log: String { (try? String(contentsOfFile: folder + "/dockerd.log", encoding: .utf8)) ?? "" }

    /// The docker CLI of the docker.io package against this dockerd.
    func docker(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try Shell.run("/usr/bin/docker", ["-H", "unix://" + folder + "/docker.sock"] + arguments)
    }

    /// An image with a static busybox (`docker import` of a rootfs: no registry is needed).
    func importBusybox(tag: String) throws {
        let rootfs = folder + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for applet in ["sh", "ip", "cat", "sleep"] {
            try FileManager.default.createSymbolicLink(
                atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        let tar = folder + "/rootfs.tar"
        _ = try Shell.run("/bin/tar", ["-C", rootfs, "-cf", tar, "."])
        let imported = try docker(["import", tar, tag])
        guard imported.status == 0 else { throw VethError(message: "docker import: \(imported.output)") }
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        _ = try? Shell.run("/bin/umount", ["-R", folder + "/exec"])
        _ = try? Shell.run("/bin/rm", ["-rf", folder])
    }
}

enum Shell {
    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
