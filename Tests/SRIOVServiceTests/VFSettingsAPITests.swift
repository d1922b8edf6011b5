import Foundation
import HostSimulator
import SRIOVHardware
import Testing

/// VF settings, driver binding and complete restore through the API, on the simulated kernel (whose igb
/// profile refuses what the real igb refuses).
@Suite(.serialized) struct VFSettingsAPITests {
    static let igb = "0000:02:00.0"

    func makeDaemon() async throws -> TestDaemon {
        try await TestDaemon(profiles: SimulatedHost.defaultProfiles + [SimulatedHost.igb82576Profile])
    }

    @Test func appliesAConfigAndRestoresEverySettingOnRelease() async throws {
        let daemon = try await makeDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let vfAddress = "0000:02:10.0"
        let before = try await client.get("/vfs/\(vfAddress)")
        let original = try #require(before.object["settings"] as? [String: Any])
        #expect(original["mac"] as? String == "00:00:00:00:00:00")

        let config: [String: Any] = [
            "mac": "02:11:22:33:44:55", "vlan": 100, "qos": 3, "spoof_check": false, "trust": true,
            "max_tx_rate": 500,
        ]
        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:a", "vf": vfAddress, "config": config])
        #expect(created.status == 201)
        let device = created.object["device"] as? [String: Any]
        #expect(device?["interface"] is String, "a netdev VF reports its interface")
        let id = try #require(created.object["id"] as? String)

        let held = try #require(try await client.get("/vfs/\(vfAddress)").object["settings"] as? [String: Any])
        #expect(held["mac"] as? String == "02:11:22:33:44:55")
        #expect(held["vlan"] as? Int == 100)
        #expect(held["qos"] as? Int == 3)
        #expect(held["spoof_check"] as? Bool == false)
        #expect(held["trust"] as? Bool == true)
        #expect(held["max_tx_rate"] as? Int == 500)

        let patched = try await client.request("PATCH", "/allocations/\(id)", json: ["vlan": 200])
        #expect(patched.status == 200)
        #expect((patched.object["config"] as? [String: Any])?["vlan"] as? Int == 200)
        #expect(
            try await client.get("/vfs/\(vfAddress)").object["settings"].flatMap { $0 as? [String: Any] }?["vlan"]
                as? Int == 200)

        #expect(try await client.request("DELETE", "/allocations/\(id)").status == 204)
        let after = try #require(try await client.get("/vfs/\(vfAddress)").object["settings"] as? [String: Any])
        for key in ["mac", "vlan", "qos", "spoof_check", "trust", "max_tx_rate", "min_tx_rate", "driver"] {
            #expect("\(after[key] ?? "nil")" == "\(original[key] ?? "nil")", "\(key) restored")
        }
        let writes = try await client.get("/audit?action=hw.netlink.write&target=\(vfAddress)&limit=500").items
        #expect(writes.count >= 7, "every netlink write is audited")
        #expect(writes.allSatisfy { ($0["details"] as? [String: Any])?["duration_ms"] is NSNumber })
        await daemon.stop()
    }

    @Test(arguments: [
        ("\"min_tx_rate\": 10, \"max_tx_rate\": 100", "min_tx_rate", "EINVAL"),
        ("\"link_state\": \"enable\"", "link_state", "EOPNOTSUPP"),
        ("\"vlan\": 20, \"vlan_proto\": \"802.1ad\"", "vlan_proto", "EPROTONOSUPPORT"),
    ])
    func aRefusedSettingRollsBackTheWholeConfig(config: String, setting: String, errno: String) async throws {
        let daemon = try await makeDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let vfAddress = "0000:02:10.2"
        let original = try await client.get("/vfs/\(vfAddress)").object["settings"] as? [String: Any]
        let body =
            "{\"owner\": \"vm:b\", \"vf\": \"\(vfAddress)\", \"config\": {\"mac\": \"02:00:00:00:00:99\", \(config)}}"
        let refused = try await client.request("POST", "/allocations", body: body)
        #expect(refused.status == 422)
        #expect(refused.object["setting"] as? String == setting)
        #expect(refused.object["driver"] as? String == "igb")
        #expect(refused.object["errno"] as? String == errno)
        let now = try await client.get("/vfs/\(vfAddress)")
        #expect(now.object["status"] as? String == "free", "the VF went back to the pool")
        let settings = now.object["settings"] as? [String: Any]
        #expect(settings?["mac"] as? String == original?["mac"] as? String, "the MAC applied first was rolled back")
        #expect(try await client.get("/allocations?state=active").items.isEmpty)
        let failures = try await client.get("/audit?action=allocation.create").items
        #expect(failures.last?["outcome"] as? String == "failure")
        await daemon.stop()
    }

    @Test func bindsVFIOAndBackToTheKernelDriver() async throws {
        let daemon = try await makeDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:dpdk", "pf": Self.igb, "config": ["driver": "vfio-pci"]])
        #expect(created.status == 201)
        let device = try #require(created.object["device"] as? [String: Any])
        #expect(device["driver"] as? String == "vfio-pci")
        #expect((device["vfio_device"] as? String)?.hasPrefix("/dev/vfio/") == true)
        #expect(device["interface"] is NSNull)
        let id = try #require(created.object["id"] as? String)
        let vf = try #require(created.object["vf"] as? String)

        #expect(try await client.request("DELETE", "/allocations/\(id)").status == 204)
        let back = try await client.get("/vfs/\(vf)")
        #expect(back.object["driver"] as? String == "igbvf")
        #expect(back.object["interface"] is String, "the netdev is back")
        await daemon.stop()
    }

    @Test func adminPatchesAFreeVFButNotAHeldOne() async throws {
        let daemon = try await makeDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let free = "0000:3b:02.1"
        let patched = try await client.request("PATCH", "/vfs/\(free)", json: ["trust": true, "vlan": 7])
        #expect(patched.status == 200)
        let settings = patched.object["settings"] as? [String: Any]
        #expect(settings?["trust"] as? Bool == true)
        #expect(settings?["vlan"] as? Int == 7)
        let bad = try await client.request("PATCH", "/vfs/\(free)", json: ["vlan": 9999])
        #expect(bad.status == 422)
        #expect(bad.object["field"] as? String == "vlan")
        let typo = try await client.request("PATCH", "/vfs/\(free)", json: ["vlans": 1])
        #expect(typo.status == 422)
        #expect(typo.object["field"] as? String == "vlans")

        let allocation = try await client.request("POST", "/allocations", json: ["owner": "vm:c", "vf": free])
        #expect(allocation.status == 201)
        let refused = try await client.request("PATCH", "/vfs/\(free)", json: ["trust": false])
        #expect(refused.status == 409)
        await daemon.stop()
    }
}
