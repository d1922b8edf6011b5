import Foundation
import Glibc
import Testing

/// A real CNI runtime: Debian's podman (4.3, CNI network backend, libcni speaking up to 1.0.0) runs a container on
/// a network whose plugin is `sriovd-cni`, with containernetworking-plugins' host-local for IPAM. The container
/// sees the VF's netdev (a veth under the simulated VF's name) as eth0 with the configured MAC and MTU and the
/// address IPAM gave. podman tears the network down when the container stops (DEL through its cleanup); after
/// `podman rm` the VF is released and the netdev is back on the host with its name, MAC and MTU.
///
/// Not skipped when podman is missing: `.ci/run` installs podman, runc, containernetworking-plugins and
/// busybox-static, so a machine without them fails here. What this machine needs (checked): runc (crun fails on
/// its cgroup setup), `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`, and a local `--rootfs` made from
/// busybox-static (no registry is reachable).
@Suite(.serialized) struct PodmanTests {
    static let vf = "0000:3b:02.2"

    @Test(.timeLimit(.minutes(2))) func podmanRunSeesTheVFAndRmReleasesIt() throws {
        for tool in ["/usr/bin/podman", "/usr/sbin/runc", "/usr/lib/cni/host-local", "/bin/busybox"] {
            #expect(FileManager.default.isExecutableFile(atPath: tool), "\(tool) missing: run .ci/run to install it")
        }
        let sriovd = try SRIOVD()
        // podman refuses a runroot path longer than 50 characters.
        let folder = "/tmp/cnipod-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let rootfs = folder + "/rootfs"
        for sub in ["bin", "cni", "plugins", "rootfs/bin", "rootfs/proc", "rootfs/sys", "rootfs/dev", "rootfs/etc"] {
            try FileManager.default.createDirectory(atPath: folder + "/" + sub, withIntermediateDirectories: true)
        }
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for applet in ["sh", "ip", "sleep", "cat"] {
            try FileManager.default.createSymbolicLink(
                atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try FileManager.default.createSymbolicLink(
            atPath: folder + "/plugins/sriovd-cni",
            withDestinationPath: buildFolder.appendingPathComponent("sriovd-cni").path)
        try """
        [network]
        network_backend = "cni"
        cni_plugin_dirs = ["\(folder)/plugins", "/usr/lib/cni"]
        network_config_dir = "\(folder)/cni"
        [engine]
        runtime = "runc"
        cgroup_manager = "cgroupfs"
        events_logger = "file"
        """.write(toFile: folder + "/containers.conf", atomically: true, encoding: .utf8)
        let network: [String: Any] = [
            "cniVersion": "1.0.0", "name": "sriovd-podman",
            "plugins": [
                [
                    "type": "sriovd-cni", "socket": sriovd.socket, "deviceID": Self.vf, "mtu": 1400,
                    "mac": "02:aa:00:00:00:07", "vlan": 42,
                    "ipam": ["type": "host-local", "subnet": "10.79.0.0/24", "dataDir": folder + "/ipam"],
                ]
            ],
        ]
        try JSONSerialization.data(withJSONObject: network).write(
            to: URL(fileURLWithPath: folder + "/cni/net.conflist"))

        let sandbox = try Sandbox("cnit-podman-unused")
        let netdev = try sriovd.netdev(of: Self.vf)
        let mac = try sandbox.veth(netdev, mtu: 1500)

        var environment = ProcessInfo.processInfo.environment
        environment["CONTAINERS_CONF"] = folder + "/containers.conf"
        let podman = [
            "--root", folder + "/root", "--runroot", folder + "/runroot", "--storage-driver", "vfs",
            "--cni-config-dir", folder + "/cni",
        ]
        func pod(_ arguments: [String]) throws -> Run {
            try run("/usr/bin/timeout", ["90", "/usr/bin/podman"] + podman + arguments, environment: environment)
        }
        defer { _ = try? pod(["rm", "-f", "cnitest"]) }

        // Attached: the container prints what it sees and exits; podman keeps it (no --rm) until `podman rm`.
        let started = try pod([
            "run", "--name", "cnitest", "--network", "sriovd-podman", "--ulimit", "nofile=1024:1024",
            "--ulimit", "nproc=1024:1024", "--rootfs", rootfs, "/bin/sh", "-c",
            "ip -o link show eth0; ip -o -4 addr show eth0",
        ])
        try #require(started.status == 0, "\(started.stdout) \(started.stderr)")
        #expect(started.stdout.contains("eth0"), "\(started.stdout)")
        #expect(started.stdout.contains("mtu 1400"), "\(started.stdout)")
        #expect(started.stdout.contains("link/ether 02:aa:00:00:00:07"), "\(started.stdout)")
        #expect(started.stdout.contains("inet 10.79.0."), "\(started.stdout)")

        let made = try sriovd.get("/allocations?state=all").json["items"] as? [[String: Any]] ?? []
        #expect(made.count == 1)
        let allocation = try #require(made.first)
        #expect((allocation["owner"] as? String ?? "").hasPrefix("cni:"))
        #expect((allocation["owner"] as? String ?? "").hasSuffix("/eth0"))
        #expect((allocation["labels"] as? [String: String])?["k8s.pod.name"] == "cnitest")
        #expect((allocation["config"] as? [String: Any])?["vlan"] as? Int == 42)
        let audit = try sriovd.get("/audit?action=allocation.attach").json["items"] as? [[String: Any]] ?? []
        #expect(audit.count == 1, "the plugin recorded where the netdev went")

        let removed = try pod(["rm", "-f", "cnitest"])
        #expect(removed.status == 0, "\(removed.stderr)")
        let id = try #require(allocation["id"] as? String)
        #expect(try sriovd.get("/allocations/\(id)").json["state"] as? String == "released")
        let home = try #require(try link(netdev), "the netdev is back in the host namespace under its name")
        #expect(home["mtu"] as? Int == 1500)
        #expect(home["address"] as? String == mac)
        #expect(
            try sriovd.get("/vfs/\(Self.vf)").json["settings"].flatMap { ($0 as? [String: Any])?["vlan"] } as? Int == 0)
    }
}
