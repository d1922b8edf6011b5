import Foundation
import HostSimulator
import Testing

@Suite(.serialized) struct InventoryAPITests {
    @Test func servesTheSimulatedHost() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()

        let pfs = try await client.get("/pfs")
        #expect(pfs.status == 200)
        #expect(pfs.header("Content-Type") == "application/json")
        #expect(pfs.header("X-Request-Id") != nil)
        let devices = Set(pfs.items.compactMap { $0["device_id"] as? String })
        #expect(devices.isSuperset(of: ["1572", "159b", "101d"]))
        #expect(pfs.items.count >= 4)
        let nvme = pfs.items.first { ($0["class"] as? String)?.hasPrefix("0x01") == true }
        #expect(nvme != nil, "a non-network PF is listed")
        #expect(nvme?["link"] is NSNull)

        let intel = try await client.get("/pfs?vendor_id=8086")
        #expect(intel.items.count == 2)
        #expect(intel.items.allSatisfy { $0["vendor_id"] as? String == "8086" })
        let i40e = try await client.get("/pfs?driver=i40e")
        #expect(i40e.items.count == 1)
        let badNuma = try await client.get("/pfs?numa_node=abc")
        #expect(badNuma.status == 400 || badNuma.status == 422)
        #expect(badNuma.header("Content-Type") == "application/problem+json")

        let x710 = try #require(i40e.items.first?["address"] as? String)
        let detail = try await client.get("/pfs/\(x710)")
        #expect(detail.status == 200)
        let vfs = detail.object["vfs"] as? [[String: Any]] ?? []
        #expect(vfs.count == detail.object["num_vfs"] as? Int)
        let listed = try await client.get("/pfs/\(x710)/vfs")
        #expect(listed.items.count == vfs.count)
        if let first = vfs.first, let address = first["address"] as? String {
            let vf = try await client.get("/vfs/\(address)")
            #expect(vf.status == 200)
            #expect(vf.object["pf"] as? String == x710)
            #expect(vf.object["status"] as? String == "free")
        }
        let all = try await client.get("/vfs")
        #expect(all.items.count == pfs.items.reduce(0) { $0 + ($1["num_vfs"] as? Int ?? 0) })
        let byPF = try await client.get("/vfs?pf=\(x710)")
        #expect(byPF.items.count == vfs.count)
        await daemon.stop()
    }

    @Test(arguments: [
        "/pfs/0000:00:00", "/pfs/..", "/pfs/0000:3b:00.0%2F..", "/pfs/%2E%2E", "/pfs/00000:3b:00.0",
        "/pfs/0000:3b:00.0.0", "/vfs/zzzz:zz:zz.z", "/pfs/0000:3b:00.8/vfs", "/pfs/0000:3b:00.0+",
        "/pfs/0000%3A3b%3A00.0%", "/pfs/0000%3G3b:00.0",
    ])
    func malformedAddressesAre400(_ path: String) async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let response = try await daemon.client().get(path)
        #expect(response.status == 400)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(response.object["type"] as? String == "urn:sriovd:problem:malformed-address")
        #expect(response.object["instance"] as? String == String(path.prefix(while: { $0 != "?" })))
        await daemon.stop()
    }

    @Test func percentEncodedColonsAreDecodedInAddresses() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        for path in ["/pfs/0000%3A3b%3A00.0", "/pfs/0000%3a3b%3a00.0", "/pfs/0000:3b%3A00.0/vfs"] {
            let response = try await client.get(path)
            #expect(response.status == 200, "\(path)")
        }
        #expect(try await client.get("/pfs/0000%3A3b%3A00.0").object["address"] as? String == "0000:3b:00.0")
        await daemon.stop()
    }

    @Test func unknownAddressesAre404() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        for path in ["/pfs/0000:ee:00.0", "/pfs/0000:ee:00.0/vfs", "/vfs/0000:ee:00.1", "/allocations/nope"] {
            let response = try await client.get(path)
            #expect(response.status == 404, "\(path)")
            #expect(response.object["status"] as? Int == 404)
            #expect(response.object["title"] is String)
            #expect(response.object["detail"] is String)
        }
        let unknownRoute = try await client.get("/nowhere")
        #expect(unknownRoute.status == 404)
        let wrongMethod = try await client.request("PUT", "/pfs")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow")?.contains("GET") == true)
        await daemon.stop()
    }

    @Test func servesItsOwnOpenAPIDocument() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let response = try await daemon.client().get("/openapi.yaml")
        #expect(response.status == 200)
        let file = try String(contentsOf: repositoryRoot().appendingPathComponent("openapi.yaml"), encoding: .utf8)
        #expect(response.text + "\n" == file, "the embedded copy equals openapi.yaml; run scripts/embed-resources.sh")
        let health = try await daemon.client().get("/healthz")
        #expect(health.status == 200)
        let ready = try await daemon.client().get("/readyz")
        #expect(ready.status == 200)
        await daemon.stop()
    }
}

func repositoryRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
