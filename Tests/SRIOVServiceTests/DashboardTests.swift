import Foundation
import SRIOVCore
import SRIOVService
import SRIOVStore
import Testing

/// `/ui/` served from the binary, open for its static files only; VF health with its events; VF traffic in
/// `GET /vfs/{address}` and, with `--vf-metrics`, on `/metrics`.
@Suite(.serialized) struct DashboardTests {
    @Test func theEmbeddedFilesAreTheUIFolder() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let folder = repositoryRoot().appendingPathComponent("ui")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names.contains("index.html") && names.contains("app.js") && names.contains("app.css"))
        var total = 0
        for name in names {
            let file = try Data(contentsOf: folder.appendingPathComponent(name))
            total += file.count
            let response = try await client.get("/ui/\(name)")
            #expect(response.status == 200, "\(name)")
            #expect(Data(response.body) == file, "/ui/\(name) equals ui/\(name); run scripts/embed-resources.sh")
            #expect(response.header("Content-Security-Policy")?.contains("default-src 'self'") == true)
            #expect(response.header("X-Content-Type-Options") == "nosniff")
        }
        #expect(total < 150_000, "the dashboard stays under 150 KB (\(total) bytes)")
        #expect(try await client.get("/ui/app.js").header("Content-Type") == "text/javascript; charset=utf-8")
        let index = try await client.get("/ui/")
        #expect(index.header("Content-Type") == "text/html; charset=utf-8")
        #expect(index.text.contains("<script src=\"app.js\""))
        let redirect = try await client.get("/ui")
        #expect(redirect.status == 308 && redirect.header("Location") == "/ui/")
        #expect(try await client.get("/ui/nothing.js").status == 404)
        let etag = try #require(index.header("ETag"))
        let revalidated = try await client.request("GET", "/ui/", headers: ["If-None-Match": etag])
        #expect(revalidated.status == 304 && revalidated.body.isEmpty)
        await daemon.stop()
    }

    /// With tokens, the page loads without one (so it can ask for it); every piece of data still needs the role.
    @Test func theFilesAreOpenAndTheDataIsNot() async throws {
        let daemon = try await SecuredDaemon()
        let client = try daemon.client()
        for path in ["/ui/", "/ui/app.js", "/ui/app.css"] {
            #expect(try await client.get(path).status == 200, "\(path) without a token")
        }
        #expect(try await client.get("/ui/no-such-file").status == 404)
        for path in ["/pfs", "/vfs", "/allocations", "/audit", "/reconcile", "/operations", "/events"] {
            #expect(try await client.get(path).status == 401, "\(path) without a token")
            let reader = try await client.request(
                "GET", path == "/events" ? "/pfs" : path,
                headers: SecuredDaemon.bearer(.reader))
            #expect(reader.status == 200 || reader.status == 503, "\(path) as reader: \(reader.status)")
        }
        await daemon.stop()
    }

    @Test func aPFLinkGoingDownDegradesItAndItsVFsAndIsAnEvent() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let x710 = try #require(PCIAddress("0000:3b:00.0"))
        #expect(await daemon.core.sweepHealth() == 0, "the first sweep only takes note")
        let before = try await client.get("/vfs?pf=\(x710)")
        #expect(before.items.count == 4)
        #expect(before.items.allSatisfy { ($0["health"] as? [String: Any])?["status"] as? String == "ok" })

        try setOperstate(daemon, pf: x710, interface: "ens785f0", "down")
        daemon.core.inventory.rescanAll(observed: true)
        #expect(await daemon.core.sweepHealth() == 5, "the PF and its 4 VFs")
        let pf = try await client.get("/pfs/\(x710)").object["health"] as? [String: Any]
        #expect(pf?["status"] as? String == "degraded" && pf?["reasons"] as? [String] == ["pf_link_down"])
        for vf in try await client.get("/vfs?pf=\(x710)").items {
            let health = vf["health"] as? [String: Any]
            #expect(health?["status"] as? String == "degraded" && health?["reasons"] as? [String] == ["pf_link_down"])
        }
        let listed = try await client.get("/pfs").items.first { $0["address"] as? String == x710.description }
        #expect((listed?["health"] as? [String: Any])?["status"] as? String == "degraded")

        let changes = try await client.get("/audit?action=vf.health.changed").items
        #expect(changes.count == 4)
        #expect(changes.allSatisfy { $0["actor"] as? String == "kernel" })
        let details = try #require(changes.first?["details"] as? [String: Any])
        #expect(details["from"] as? String == "ok" && details["to"] as? String == "degraded")
        #expect(details["reasons"] as? [String] == ["pf_link_down"] && details["pf"] as? String == x710.description)
        #expect(try await client.get("/audit?action=pf.health.changed").items.count == 1)

        try setOperstate(daemon, pf: x710, interface: "ens785f0", "up")
        daemon.core.inventory.rescanAll(observed: true)
        #expect(await daemon.core.sweepHealth() == 5)
        #expect(await daemon.core.sweepHealth() == 0, "nothing changed since")
        let back = try await client.get("/audit?action=vf.health.changed").items.suffix(4)
        #expect(back.allSatisfy { ($0["details"] as? [String: Any])?["to"] as? String == "ok" })
        await daemon.stop()
    }

    @Test func aVFWithoutADriverIsUnavailable() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        #expect(try await client.request("POST", "/pfs/0000:d8:00.0/vfs", json: ["count": 2]).status == 201)
        let vfs = try await client.get("/vfs?pf=0000:d8:00.0").items
        #expect(vfs.count == 2)
        for vf in vfs {
            let health = vf["health"] as? [String: Any]
            #expect(health?["status"] as? String == "unavailable" && health?["reasons"] as? [String] == ["no_driver"])
        }
        await daemon.stop()
    }

    @Test func aVFShowsItsTrafficAndMetricsAreOptIn() async throws {
        let daemon = try await TestDaemon(vfMetricsLimit: 1)
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let created = try await client.request(
            "POST", "/allocations",
            json: ["owner": "traffic", "pf": "0000:3b:00.0", "config": ["mac": "02:00:00:00:00:33"]])
        #expect(created.status == 201)
        let vf = try #require(created.object["vf"] as? String)
        let first = try #require(try await client.get("/vfs/\(vf)").object["stats"] as? [String: Any])
        let second = try #require(try await client.get("/vfs/\(vf)").object["stats"] as? [String: Any])
        for key in [
            "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped", "broadcast",
            "multicast",
        ] {
            #expect(first[key] is Int, "\(key) is a number")
        }
        let (a, b) = (try #require(first["rx_packets"] as? Int), try #require(second["rx_packets"] as? Int))
        #expect(a > 0 && b > a, "the VF in use sees traffic: \(a) then \(b)")
        // A VF of a non-network PF has no netdev to ask: stats is null.
        #expect(try await client.request("POST", "/pfs/0000:d8:00.0/vfs", json: ["count": 1]).status == 201)
        let nvme = try await client.get("/vfs/0000:d8:00.1").object
        #expect(nvme.keys.contains("stats") && nvme["stats"] is NSNull)

        await daemon.core.sweepHealth()
        let metrics = try await client.get("/metrics").text
        #expect(metrics.contains("sriovd_vf_rx_packets_total{pf=\"0000:3b:00.0\",vf=\"\(vf)\"}"))
        // Limit 1: the held VF, and none of the 5 other network VFs.
        #expect(metrics.components(separatedBy: "\n").filter { $0.hasPrefix("sriovd_vf_rx_bytes_total{") }.count == 1)
        #expect(metrics.contains("sriovd_vf_metrics_omitted 5"))
        #expect(metrics.contains("sriovd_vfs_health{pf=\"0000:3b:00.0\",status=\"ok\"} 4"))

        let plain = try await TestDaemon()
        defer { plain.removeFiles() }
        let text = try await plain.client().get("/metrics").text
        #expect(!text.contains("sriovd_vf_rx_packets_total") && text.contains("sriovd_pf_health{"))
        await plain.stop()
        await daemon.stop()
    }

    private func setOperstate(_ daemon: TestDaemon, pf: PCIAddress, interface: String, _ state: String) throws {
        let operstate = daemon.directory.appendingPathComponent("bus/pci/devices/\(pf)").resolvingSymlinksInPath()
            .appendingPathComponent("net/\(interface)/operstate")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: operstate.path)
        try Data("\(state)\n".utf8).write(to: operstate)
    }
}
