import Foundation
import Testing

/// `sriovd-cni` run as a runtime runs it, against the real `sriovd` on its Unix socket. The simulated host's VFs
/// get real netdevs: veth interfaces the test creates under the names the simulated sysfs gives them, so every
/// move, rename, MTU and MAC is the kernel's, checked with `ip -n NS -j link`.
@Suite(.serialized) struct PluginVethTests {
    static let vf = "0000:3b:02.1"

    func config(
        _ sriovd: SRIOVD, version: String = "1.0.0", ipam: Bool = true, extra: [String: Any] = [:]
    ) -> [String: Any] {
        var config: [String: Any] = [
            "cniVersion": version, "name": "sriov-net", "type": "sriovd-cni", "socket": sriovd.socket,
            "deviceID": Self.vf,
        ]
        if ipam {
            config["ipam"] = [
                "type": "host-local", "subnet": "10.77.0.0/24", "gateway": "10.77.0.1",
                "routes": [["dst": "10.78.0.0/16"]], "dataDir": sriovd.folder + "/ipam",
            ]
        }
        config.merge(extra) { $1 }
        return config
    }

    @Test func addMovesTheNetdevInAndDelPutsEverythingBack() throws {
        let sriovd = try SRIOVD()
        let sandbox = try Sandbox("cnit-add")
        let netdev = try sriovd.netdev(of: Self.vf)
        let originalMAC = try sandbox.veth(netdev, mtu: 1500)
        var config = config(
            sriovd, extra: ["mtu": 1400, "mac": "02:aa:bb:cc:dd:01", "vlan": 100, "spoofchk": "off", "trust": "on"])

        let add = try cni("ADD", container: "ctr1", netns: sandbox.path, config: config)
        #expect(add.status == 0, "\(add.stdout) \(add.stderr)")
        let interfaces = try #require(add.json["interfaces"] as? [[String: Any]])
        #expect(interfaces.first?["name"] as? String == "net1")
        #expect(interfaces.first?["mac"] as? String == "02:aa:bb:cc:dd:01")
        #expect(interfaces.first?["sandbox"] as? String == sandbox.path)
        #expect(interfaces.first?["mtu"] == nil, "1.0.0 has no interface mtu")
        let ips = try #require(add.json["ips"] as? [[String: Any]])
        #expect(ips.first?["address"] as? String == "10.77.0.2/24")
        #expect(ips.first?["interface"] as? Int == 0)

        // The kernel's view: moved, renamed, MTU, MAC, up; gone from the host namespace.
        let inside = try #require(try link("net1", in: sandbox.name))
        #expect(inside["mtu"] as? Int == 1400)
        #expect(inside["address"] as? String == "02:aa:bb:cc:dd:01")
        #expect((inside["flags"] as? [String] ?? []).contains("UP"))
        #expect(try link(netdev) == nil, "the netdev left the host namespace")
        let addresses = try run("/sbin/ip", ["-n", sandbox.name, "-j", "addr", "show", "dev", "net1"]).stdout
        #expect(addresses.contains("\"local\":\"10.77.0.2\""))
        let routes = try run("/sbin/ip", ["-n", sandbox.name, "route"]).stdout
        #expect(routes.contains("10.78.0.0/16 via 10.77.0.1 dev net1"), "\(routes)")
        #expect(FileManager.default.fileExists(atPath: sriovd.folder + "/ipam/sriov-net/10.77.0.2"), "host-local's")

        // sriovd's view: the allocation, its labels and attachment, and the VF's settings PF-side.
        let allocation = try #require(try sriovd.allocations(owner: "cni:ctr1/net1").first)
        #expect(allocation["state"] as? String == "active")
        #expect(
            allocation["labels"] as? [String: String] == [
                "cni.network": "sriov-net", "k8s.pod.namespace": "default", "k8s.pod.name": "web-0",
            ])
        let attachment = try #require(allocation["attachment"] as? [String: Any])
        #expect(attachment["netns"] as? String == sandbox.path)
        #expect(attachment["ifname"] as? String == "net1")
        #expect(attachment["original_ifname"] as? String == netdev)
        #expect(attachment["original_mtu"] as? Int == 1500)
        #expect(attachment["original_mac"] as? String == originalMAC)
        let settings = try #require(try sriovd.get("/vfs/\(Self.vf)").json["settings"] as? [String: Any])
        #expect(settings["vlan"] as? Int == 100)
        #expect(settings["mac"] as? String == "02:aa:bb:cc:dd:01")
        #expect(settings["trust"] as? Bool == true)

        // CHECK with ADD's result; then a CHECK that must fail once the MTU changed behind its back.
        config["prevResult"] = add.json
        let check = try cni(
            "CHECK", container: "ctr1", netns: sandbox.path, config: config.merging(["mtu": 1400]) { $1 })
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        try ip("-n", sandbox.name, "link", "set", "net1", "mtu", "1300")
        let drift = try cni("CHECK", container: "ctr1", netns: sandbox.path, config: config)
        #expect(drift.status != 0)
        #expect(drift.json["code"] as? Int == 103)
        #expect((drift.json["msg"] as? String ?? "").contains("MTU 1300"), "\(drift.stdout)")

        // DEL: back under its name, MTU and MAC; released; VLAN reset by sriovd.
        let del = try cni("DEL", container: "ctr1", netns: sandbox.path, config: config)
        #expect(del.status == 0, "\(del.stdout) \(del.stderr)")
        #expect(del.stdout.isEmpty)
        let home = try #require(try link(netdev))
        #expect(home["mtu"] as? Int == 1500)
        #expect(home["address"] as? String == originalMAC)
        #expect(try link("net1", in: sandbox.name) == nil)
        #expect(try sriovd.allocations(owner: "cni:ctr1/net1").first?["state"] as? String == "released")
        let restored = try #require(try sriovd.get("/vfs/\(Self.vf)").json["settings"] as? [String: Any])
        #expect(restored["vlan"] as? Int == 0)

        // A second DEL is success and changes nothing.
        let again = try cni("DEL", container: "ctr1", netns: sandbox.path, config: config)
        #expect(again.status == 0, "\(again.stdout)")
        #expect(try sriovd.allocations(owner: "cni:ctr1/net1").count == 1)
        // The IPAM reservation went with DEL (host-local keeps one file per address).
        let reservation = sriovd.folder + "/ipam/sriov-net/10.77.0.2"
        #expect(!FileManager.default.fileExists(atPath: reservation))
    }

    /// The allocation behind a first ADD, a retried ADD (same or changed configuration) and an ADD after a DEL of
    /// the same container and interface: one VF held at a time, a new allocation only after the DEL.
    @Test func aRetriedAddKeepsItsAllocationAndAnAddAfterDelGetsANewOne() throws {
        let sriovd = try SRIOVD()
        let sandbox = try Sandbox("cnit-retry")
        try sandbox.veth(try sriovd.netdev(of: Self.vf))
        let plain = config(sriovd, version: "1.1.0", ipam: false)
        let owner = "cni:r1/net1"

        #expect(try cni("ADD", container: "r1", netns: sandbox.path, config: plain).status == 0)
        let first = try #require(try sriovd.allocations(owner: owner).first?["id"] as? String)
        // The runtime retries after losing the interface (here: put back on the host by hand), with the same
        // configuration (sriovd replays the first answer) and with a changed one (the key's body differs): both take
        // the allocation held again, never a second VF.
        for retry in [plain, plain.merging(["vlan": 7]) { $1 }] {
            try ip("-n", sandbox.name, "link", "set", "net1", "netns", "1", "name", try sriovd.netdev(of: Self.vf))
            let again = try cni("ADD", container: "r1", netns: sandbox.path, config: retry)
            #expect(again.status == 0, "\(again.stdout) \(again.stderr)")
            #expect(try sriovd.allocations(owner: owner).map { $0["id"] as? String } == [first])
            #expect(try link("net1", in: sandbox.name) != nil)
        }
        // With the interface in place, a retried ADD is refused before it asks sriovd for anything.
        let doubled = try cni("ADD", container: "r1", netns: sandbox.path, config: plain)
        #expect(doubled.json["code"] as? Int == 101, "\(doubled.stdout)")
        #expect(try sriovd.allocations(owner: owner).count == 1)
        #expect(try cni("DEL", container: "r1", netns: sandbox.path, config: plain).status == 0)

        // The same container and interface added again: a new allocation beside the released one.
        let readd = try cni("ADD", container: "r1", netns: sandbox.path, config: plain)
        #expect(readd.status == 0, "\(readd.stdout) \(readd.stderr)")
        let history = try sriovd.allocations(owner: owner)
        #expect(history.count == 2)
        #expect(Set(history.compactMap { $0["state"] as? String }) == ["released", "active"])
        #expect(try link("net1", in: sandbox.name) != nil)
        #expect(try cni("DEL", container: "r1", netns: sandbox.path, config: plain).status == 0)
        #expect(try sriovd.allocations(owner: owner).allSatisfy { $0["state"] as? String == "released" })
    }

    @Test func answersInTheVersionAsked() throws {
        let sriovd = try SRIOVD()
        let sandbox = try Sandbox("cnit-ver")
        try sandbox.veth(try sriovd.netdev(of: Self.vf))

        let version = try cni("VERSION", config: ["cniVersion": "1.0.0"])
        #expect(version.status == 0)
        #expect(version.json["cniVersion"] as? String == "1.0.0")
        #expect(version.json["supportedVersions"] as? [String] == ["0.4.0", "1.0.0", "1.1.0"])

        // 1.1.0: the interface carries mtu and pciID.
        let modern = config(sriovd, version: "1.1.0", ipam: false, extra: ["mtu": 1450])
        let add = try cni("ADD", container: "v110", netns: sandbox.path, config: modern)
        #expect(add.status == 0, "\(add.stdout) \(add.stderr)")
        #expect(add.json["cniVersion"] as? String == "1.1.0")
        let interface = try #require((add.json["interfaces"] as? [[String: Any]])?.first)
        #expect(interface["mtu"] as? Int == 1450)
        #expect(interface["pciID"] as? String == Self.vf)
        #expect(try cni("DEL", container: "v110", netns: sandbox.path, config: modern).status == 0)

        // 0.4.0: ips carry their version.
        let old = config(sriovd, version: "0.4.0")
        let add040 = try cni("ADD", container: "v040", netns: sandbox.path, config: old)
        #expect(add040.status == 0, "\(add040.stdout) \(add040.stderr)")
        #expect(add040.json["cniVersion"] as? String == "0.4.0")
        #expect((add040.json["ips"] as? [[String: Any]])?.first?["version"] as? String == "4")
        #expect((add040.json["interfaces"] as? [[String: Any]])?.first?["pciID"] == nil)
        #expect(try cni("DEL", container: "v040", netns: sandbox.path, config: old).status == 0)

        // A version it does not speak: code 1, naming what it speaks.
        let refused = try cni("ADD", container: "v030", netns: sandbox.path, config: config(sriovd, version: "0.3.1"))
        #expect(refused.json["code"] as? Int == 1)
        #expect((refused.json["details"] as? String ?? "").contains("0.4.0, 1.0.0, 1.1.0"))
    }

    @Test func errorsSayWhatToFixAndAFailedAddUndoesEverything() throws {
        let sriovd = try SRIOVD()
        let sandbox = try Sandbox("cnit-err")
        let netdev = try sriovd.netdev(of: Self.vf)
        let mac = try sandbox.veth(netdev)

        let noNetns = try cni("ADD", container: "e1", netns: nil, config: config(sriovd))
        #expect(noNetns.json["code"] as? Int == 4)
        #expect((noNetns.json["msg"] as? String ?? "").contains("CNI_NETNS"))
        let badVLAN = try cni(
            "ADD", container: "e1", netns: sandbox.path, config: config(sriovd, extra: ["vlan": 5000]))
        #expect(badVLAN.json["code"] as? Int == 7)
        #expect((badVLAN.json["msg"] as? String ?? "").contains("vlan"))
        let nothing = try cni(
            "ADD", container: "e1", netns: sandbox.path, config: ["cniVersion": "1.0.0", "name": "n"])
        #expect(nothing.json["code"] as? Int == 7)
        #expect((nothing.json["msg"] as? String ?? "").contains("deviceID"))
        #expect(try sriovd.allocations(owner: "cni:e1/net1").isEmpty, "refused before anything was asked of sriovd")

        // IPAM fails after the move: the move and the allocation are undone before the error.
        var broken = config(sriovd, extra: ["mtu": 1400])
        broken["ipam"] = ["type": "no-such-ipam"]
        let failed = try cni("ADD", container: "e2", netns: sandbox.path, config: broken)
        #expect(failed.status != 0)
        #expect(failed.json["code"] as? Int == 7)
        #expect((failed.json["msg"] as? String ?? "").contains("no-such-ipam"))
        #expect(try link("net1", in: sandbox.name) == nil)
        let home = try #require(try link(netdev))
        #expect(home["mtu"] as? Int == 1500)
        #expect(home["address"] as? String == mac)
        #expect(try sriovd.allocations(owner: "cni:e2/net1").map { $0["state"] as? String } == ["released"])

        // An interface of that name already in the namespace: refused, nothing allocated.
        try ip("-n", sandbox.name, "link", "add", "net1", "type", "veth", "peer", "name", "other")
        let taken = try cni("ADD", container: "e3", netns: sandbox.path, config: config(sriovd))
        #expect(taken.status != 0)
        #expect((taken.json["msg"] as? String ?? "").contains("already exists"))
        #expect(try sriovd.allocations(owner: "cni:e3/net1").isEmpty)

        // sriovd unreachable: try again later (11), saying where it looked.
        sriovd.stop()
        let down = try cni("ADD", container: "e4", netns: sandbox.path, ifname: "net9", config: config(sriovd))
        #expect(down.json["code"] as? Int == 11)
        #expect((down.json["msg"] as? String ?? "").contains(sriovd.socket))
    }

    @Test func delIsSafeLate() throws {
        let sriovd = try SRIOVD()
        let netdev = try sriovd.netdev(of: Self.vf)
        let plain = config(sriovd, ipam: false)

        // The namespace already gone (its veth went with it): DEL succeeds and releases.
        do {
            let sandbox = try Sandbox("cnit-late1")
            try sandbox.veth(netdev)
            #expect(try cni("ADD", container: "l1", netns: sandbox.path, config: plain).status == 0)
            try ip("netns", "del", sandbox.name)
            let del = try cni("DEL", container: "l1", netns: sandbox.path, config: plain)
            #expect(del.status == 0, "\(del.stdout) \(del.stderr)")
            #expect(try sriovd.allocations(owner: "cni:l1/net1").first?["state"] as? String == "released")
        }

        // sriovd stopped: DEL asks to be retried (11); restarted, the same DEL succeeds from what it kept.
        let sandbox = try Sandbox("cnit-late2")
        try sandbox.veth(netdev)
        #expect(try cni("ADD", container: "l2", netns: sandbox.path, config: plain).status == 0)
        sriovd.stop()
        let down = try cni("DEL", container: "l2", netns: sandbox.path, config: plain)
        #expect(down.json["code"] as? Int == 11)
        #expect(try link("net1", in: sandbox.name) != nil, "nothing moved while sriovd could not release")
        try sriovd.start()
        let del = try cni("DEL", container: "l2", netns: sandbox.path, config: plain)
        #expect(del.status == 0, "\(del.stdout) \(del.stderr)")
        #expect(try link(netdev)?["mtu"] as? Int == 1500)

        // A late DEL of an attachment whose VF moved on never touches the new holder.
        let second = try Sandbox("cnit-late3")
        #expect(try cni("ADD", container: "l3", netns: second.path, config: plain).status == 0)
        let late = try cni("DEL", container: "l2", netns: sandbox.path, config: plain)
        #expect(late.status == 0)
        #expect(try link("net1", in: second.name) != nil, "the new holder keeps its netdev")
        #expect(try sriovd.allocations(owner: "cni:l3/net1").first?["state"] as? String == "active")
        #expect(try cni("DEL", container: "l3", netns: second.path, config: plain).status == 0)
    }

    @Test func gcReleasesWhatIsNotListedAndStatusReportsAvailability() throws {
        let sriovd = try SRIOVD()
        let sandbox = try Sandbox("cnit-gc")
        let vfs = ["0000:3b:02.1", "0000:3b:02.2"]
        for vf in vfs { try sandbox.veth(try sriovd.netdev(of: vf)) }
        var plain = config(sriovd, version: "1.1.0", ipam: false)
        plain["deviceID"] = vfs[0]
        #expect(try cni("ADD", container: "g1", netns: sandbox.path, config: plain).status == 0)
        plain["deviceID"] = vfs[1]
        #expect(try cni("ADD", container: "g2", netns: sandbox.path, ifname: "net2", config: plain).status == 0)

        var gc = plain
        gc["deviceID"] = nil
        gc["cni.dev/valid-attachments"] = [["containerID": "g1", "ifname": "net1"]]
        let collected = try cni("GC", container: nil, netns: nil, ifname: nil, config: gc)
        #expect(collected.status == 0, "\(collected.stdout) \(collected.stderr)")
        #expect(try sriovd.allocations(owner: "cni:g1/net1").first?["state"] as? String == "active")
        #expect(try sriovd.allocations(owner: "cni:g2/net2").first?["state"] as? String == "released")
        #expect(try link(try sriovd.netdev(of: vfs[1])) != nil, "GC moved the stale netdev home")

        var status = plain
        status["deviceID"] = nil
        status["pf"] = "0000:3b:00.0"
        #expect(try cni("STATUS", container: nil, netns: nil, ifname: nil, config: status).status == 0)
        sriovd.stop()
        let down = try cni("STATUS", container: nil, netns: nil, ifname: nil, config: status)
        #expect(down.json["code"] as? Int == 50)
        try sriovd.start()
        plain["deviceID"] = vfs[0]
        #expect(try cni("DEL", container: "g1", netns: sandbox.path, config: plain).status == 0)
    }

    /// STATUS answers 50 only when no VF could serve this configuration: its deviceID, pf or selector, as ADD
    /// would ask sriovd. The default simulated host has free iavf VFs on the i40e PF ens785f0 (NUMA node 0) and
    /// mlx5 VFs on ens3f0np0 (node 1).
    @Test func statusAnswers50OnlyWhenNoVFCouldServeTheConfig() throws {
        let sriovd = try SRIOVD()
        let sandbox = try Sandbox("cnit-status")
        try sandbox.veth(try sriovd.netdev(of: Self.vf))
        var base = config(sriovd, version: "1.1.0", ipam: false)
        base["deviceID"] = nil
        func status(_ extra: [String: Any]) throws -> Run {
            try cni("STATUS", container: nil, netns: nil, ifname: nil, config: base.merging(extra) { $1 })
        }
        let served: [[String: Any]] = [
            ["deviceID": Self.vf], ["pf": "0000:3b:00.0"], [:],
            ["selector": ["pf_interface": "ens785f0", "driver": "iavf", "numa_node": 0]],
            ["selector": ["vendor_id": "15b3", "numa_node": 1]],
        ]
        for extra in served {
            let answer = try status(extra)
            #expect(answer.status == 0, "\(extra): \(answer.stdout)")
        }
        let unserved: [([String: Any], String)] = [
            (["deviceID": "0000:3b:0f.7"], "is not a VF sriovd knows"),
            (["pf": "0000:5e:00.0"], "no free VF on PF 0000:5e:00.0"),
            (["selector": ["pf_interface": "ens801f0"]], "no free VF on the selector"),
            (["selector": ["vendor_id": "15b3", "numa_node": 0]], "no free VF on the selector"),
            (["selector": ["driver": "ixgbevf"]], "no free VF on the selector"),
        ]
        for (extra, message) in unserved {
            let answer = try status(extra)
            #expect(answer.status != 0 && answer.json["code"] as? Int == 50, "\(extra): \(answer.stdout)")
            #expect((answer.json["msg"] as? String ?? "").contains(message), "\(answer.stdout)")
        }

        // The VF held: 50 for its deviceID, still 0 for its PF, whose other VFs are free.
        #expect(
            try cni("ADD", container: "s1", netns: sandbox.path, config: base.merging(["deviceID": Self.vf]) { $1 })
                .status == 0)
        let held = try status(["deviceID": Self.vf])
        #expect(held.json["code"] as? Int == 50 && (held.json["msg"] as? String ?? "").contains("is held"))
        #expect(try status(["pf": "0000:3b:00.0"]).status == 0)
        #expect(
            try cni("DEL", container: "s1", netns: sandbox.path, config: base.merging(["deviceID": Self.vf]) { $1 })
                .status == 0)
    }

    @Test func aVFIOConfigMovesNoNetdevAndNamesThePCIDevice() throws {
        let sriovd = try SRIOVD()
        let sandbox = try Sandbox("cnit-vfio")
        let netdev = try sriovd.netdev(of: Self.vf)
        try sandbox.veth(netdev)
        let vfio = config(sriovd, version: "1.1.0", ipam: false, extra: ["driver": "vfio-pci"])
        let add = try cni("ADD", container: "d1", netns: sandbox.path, config: vfio)
        #expect(add.status == 0, "\(add.stdout) \(add.stderr)")
        let interface = try #require((add.json["interfaces"] as? [[String: Any]])?.first)
        #expect(interface["pciID"] as? String == Self.vf)
        #expect(try link(netdev) != nil, "no netdev moved")
        #expect(try sriovd.get("/vfs/\(Self.vf)").json["driver"] as? String == "vfio-pci")
        #expect(try cni("DEL", container: "d1", netns: sandbox.path, config: vfio).status == 0)
        #expect(try sriovd.allocations(owner: "cni:d1/net1").first?["state"] as? String == "released")
    }
}
