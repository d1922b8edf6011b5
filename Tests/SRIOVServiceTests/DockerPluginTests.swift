import Foundation
import SRIOVCore
import Testing

/// Docker's remote network driver protocol on the plugin socket, call by call, as dockerd makes the calls (no
/// Content-Type, `Accept: application/vnd.docker.plugins.v1.2+json`), against the in-process daemon on a simulated
/// host. The VF used for joins gets a real netdev: a veth created under the simulated VF's netdev name.
@Suite(.serialized)
struct DockerPluginTests {
    /// The mlx5 PF of the default simulated host and its second VF (netdev ens3f0np0v1).
    static let pf = "0000:af:00.0"
    static let vf = "0000:af:00.3"
    static let netdev = "ens3f0np0v1"

    private func withDaemon(_ body: (TestDaemon, DockerPluginClient) async throws -> Void) async throws {
        let daemon = try await TestDaemon(dockerPlugin: true)
        defer { daemon.removeFiles() }
        do {
            try await body(daemon, DockerPluginClient(path: try #require(daemon.dockerPluginSocket)))
        } catch {
            await daemon.stop()
            throw error
        }
        await daemon.stop()
    }

    private func network(_ id: String, _ options: [String: String], gateway: String? = "10.9.0.1/24") -> String {
        let object: [String: Any] = [
            "NetworkID": id,
            "Options": ["com.docker.network.generic": options, "com.docker.network.enable_ipv6": false],
            "IPv4Data": [["AddressSpace": "LocalDefault", "Pool": "10.9.0.0/24", "Gateway": gateway as Any]],
            "IPv6Data": [],
        ]
        return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    private func endpoint(_ network: String, _ endpoint: String, mac: String? = nil) -> String {
        var interface: [String: String] = ["Address": "10.9.0.2/24"]
        if let mac { interface["MacAddress"] = mac }
        let object: [String: Any] = [
            "NetworkID": network, "EndpointID": endpoint, "Interface": interface, "Options": [:] as [String: String],
        ]
        return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    private func ids(_ network: String, _ endpoint: String) -> String {
        #"{"NetworkID":"\#(network)","EndpointID":"\#(endpoint)"}"#
    }

    @Test func handshakeAndUnknownCalls() async throws {
        try await withDaemon { _, plugin in
            let activate = try await plugin.call("Plugin.Activate")
            #expect(activate.status == 200)
            #expect(activate.json["Implements"] as? [String] == ["NetworkDriver"])
            let capabilities = try await plugin.call("NetworkDriver.GetCapabilities")
            #expect(capabilities.json["Scope"] as? String == "local")
            #expect(capabilities.json["ConnectivityScope"] as? String == "local")
            let unknown = try await plugin.call("NetworkDriver.AllocateNetwork", "{}")
            #expect(unknown.status == 404)
            #expect(unknown.err.contains("does not implement /NetworkDriver.AllocateNetwork"))
            let rest = try await plugin.call("pfs", method: "GET")
            #expect(rest.status == 405)
            let form = try await plugin.call(
                "NetworkDriver.DeleteNetwork", #"{"NetworkID":"x"}"#, contentType: "application/x-www-form-urlencoded")
            #expect(form.status == 415)
            #expect(form.err.contains("vnd.docker.plugins.v1.2+json"))
            for call in ["DiscoverNew", "DiscoverDelete"] {
                let answer = try await plugin.call(
                    "NetworkDriver." + call, #"{"DiscoveryType":1,"DiscoveryData":{"Address":"10.0.0.1","self":true}}"#,
                    contentType: "application/vnd.docker.plugins.v1.2+json")
                #expect(answer.status == 200 && answer.body == "{}")
            }
            for call in ["ProgramExternalConnectivity", "RevokeExternalConnectivity"] {
                let answer = try await plugin.call("NetworkDriver." + call, ids("n", "e"))
                #expect(answer.status == 200 && answer.body == "{}")
            }
            let badID = try await plugin.call("NetworkDriver.CreateNetwork", network("a/b", ["pf": Self.pf]))
            #expect(badID.status == 422 && badID.err.contains("NetworkID must be 1 to 128 printable"))
            let malformed = try await plugin.call("NetworkDriver.CreateNetwork", "{not json")
            #expect(malformed.status == 400)
            #expect(!malformed.err.isEmpty)
        }
    }

    @Test func networkOptionsAreCheckedWithTheAPIRules() async throws {
        try await withDaemon { daemon, plugin in
            let cases: [([String: String], Int, String)] = [
                (["pf": Self.pf, "vlan": "5000"], 422, "--opt vlan: must be between 0 and 4095"),
                (["pf": Self.pf, "vlan": "ten"], 422, "--opt vlan: must be an integer"),
                (["pf": Self.pf, "qos": "3"], 422, "--opt vlan: is required when qos"),
                (["pf": "0000:zz:00.0"], 422, "--opt pf:"),
                (["pf": Self.pf, "vlans": "1"], 422, "--opt vlans: is not an option of the sriovd driver"),
                (["pf": Self.pf, "driver": "vfio-pci"], 422, "--opt driver: vfio-pci takes the VF's netdev away"),
                (["pf": Self.pf, "numa_node": "0"], 422, "--opt numa_node: cannot be given with pf or vf"),
                (["pf": Self.pf, "mtu": "20"], 422, "--opt mtu: must be from 68 to 65535"),
                (["pf": Self.pf, "spoof_check": "maybe"], 422, "--opt spoof_check: must be true or false"),
                (["pf": Self.pf, "mac": "01:00:00:00:00:01"], 422, "--opt mac:"),
            ]
            for (options, status, message) in cases {
                let answer = try await plugin.call("NetworkDriver.CreateNetwork", network("bad", options))
                #expect(answer.status == status, "\(options)")
                #expect(answer.err.contains(message), "\(options): \(answer.err)")
            }
            let client = try daemon.client()
            let listed = try await client.get("/docker/networks")
            #expect((listed.object["items"] as? [Any])?.isEmpty == true)
            let refused = try await client.get("/audit?action=docker.network.create")
            #expect((refused.object["items"] as? [[String: Any]])?.count == cases.count)
        }
    }

    @Test func networksSurviveARestart() async throws {
        let first = try await TestDaemon(dockerPlugin: true)
        let plugin = DockerPluginClient(path: try #require(first.dockerPluginSocket))
        let options = ["pf": Self.pf, "vlan": "100", "qos": "2", "mtu": "1400", "trust": "on"]
        #expect(try await plugin.call("NetworkDriver.CreateNetwork", network("n1", options)).body == "{}")
        // The same network again (Docker retries) changes nothing; other options under its id are refused.
        #expect(try await plugin.call("NetworkDriver.CreateNetwork", network("n1", options)).body == "{}")
        let clash = try await plugin.call("NetworkDriver.CreateNetwork", network("n1", ["pf": Self.pf]))
        #expect(clash.status == 422)
        await first.stop()
        let second = try await TestDaemon(directory: first.directory, dockerPlugin: true)
        defer { second.removeFiles() }
        let listed = try await second.client().get("/docker/networks")
        let items = try #require(listed.object["items"] as? [[String: Any]])
        #expect(items.count == 1)
        #expect(items.first?["network_id"] as? String == "n1")
        #expect(items.first?["options"] as? [String: String] == options)
        #expect(items.first?["gateway"] as? String == "10.9.0.1")
        let again = DockerPluginClient(path: try #require(second.dockerPluginSocket))
        let created = try await again.call("NetworkDriver.CreateEndpoint", endpoint("n1", "e1"))
        #expect(created.status == 200, "\(created.body)")
        #expect(try await again.call("NetworkDriver.DeleteEndpoint", ids("n1", "e1")).body == "{}")
        #expect(try await again.call("NetworkDriver.DeleteNetwork", #"{"NetworkID":"n1"}"#).body == "{}")
        await second.stop()
    }

    @Test func endpointLifecycleOnARealNetdev() async throws {
        try await withDaemon { daemon, plugin in
            let veth = try Veth(Self.netdev)
            defer { veth.remove() }
            let options = ["vf": Self.vf, "vlan": "100", "mtu": "1400", "spoof_check": "on"]
            #expect(try await plugin.call("NetworkDriver.CreateNetwork", network("n1", options)).body == "{}")
            let created = try await plugin.call("NetworkDriver.CreateEndpoint", endpoint("n1", "e1"))
            let mac = try #require((created.json["Interface"] as? [String: String])?["MacAddress"])
            #expect(mac.hasPrefix("02:"))
            // CreateEndpoint is idempotent per endpoint: the same MAC, one allocation.
            let repeated = try await plugin.call("NetworkDriver.CreateEndpoint", endpoint("n1", "e1"))
            #expect((repeated.json["Interface"] as? [String: String])?["MacAddress"] == mac)
            let client = try daemon.client()
            let held = try await client.get("/allocations?owner=docker:n1/e1")
            let allocations = try #require(held.object["items"] as? [[String: Any]])
            #expect(allocations.count == 1)
            #expect(allocations.first?["vf"] as? String == Self.vf)
            let config = allocations.first?["config"] as? [String: Any]
            #expect(config?["mac"] as? String == mac && config?["vlan"] as? Int == 100)
            let info = try await plugin.call("NetworkDriver.EndpointOperInfo", ids("n1", "e1"))
            #expect((info.json["Value"] as? [String: String])?["mac"] == mac)

            let joined = try await plugin.call(
                "NetworkDriver.Join",
                #"{"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/var/run/docker/netns/0123abcd","Options":{}}"#)
            let name = try #require(joined.json["InterfaceName"] as? [String: String])
            #expect(name["SrcName"] == Self.netdev && name["DstPrefix"] == "eth")
            #expect(joined.json["Gateway"] as? String == "10.9.0.1")
            #expect(try veth.mtu() == 1400)
            let inUse = try await plugin.call("NetworkDriver.DeleteNetwork", #"{"NetworkID":"n1"}"#)
            #expect(inUse.status == 409 && inUse.err.contains("still has 1 endpoint"))

            #expect(try await plugin.call("NetworkDriver.Leave", ids("n1", "e1")).body == "{}")
            #expect(try await plugin.call("NetworkDriver.DeleteEndpoint", ids("n1", "e1")).body == "{}")
            #expect(try veth.mtu() == 1500)
            let after = try await client.get("/allocations?owner=docker:n1/e1&state=all")
            #expect((after.object["items"] as? [[String: Any]])?.first?["state"] as? String == "released")
            // Docker repeats calls after a restart of its own: each is answered as done.
            #expect(try await plugin.call("NetworkDriver.Leave", ids("n1", "e1")).body == "{}")
            #expect(try await plugin.call("NetworkDriver.DeleteEndpoint", ids("n1", "e1")).body == "{}")
            #expect(try await plugin.call("NetworkDriver.DeleteNetwork", #"{"NetworkID":"n1"}"#).body == "{}")
            #expect(try await plugin.call("NetworkDriver.DeleteNetwork", #"{"NetworkID":"n1"}"#).body == "{}")
            // The same changes on the event stream, typed, and followed by the endpoint's owner.
            let stream = try EventStreamClient(port: daemon.port, path: "/events?type=docker.&after=0")
            try stream.readHead()
            var types: [String] = []
            for _ in 0..<9 { types.append(try #require(try stream.next()).type) }
            #expect(
                types == [
                    "docker.network.created", "docker.endpoint.created", "docker.endpoint.joined",
                    "docker.network.delete.failed", "docker.endpoint.left", "docker.endpoint.deleted",
                    "docker.endpoint.left", "docker.network.deleted", "docker.network.deleted",
                ])
            let owned = try EventStreamClient(port: daemon.port, path: "/events?owner=docker:n1/e1&after=0")
            try owned.readHead()
            var ownTypes: Set<String> = []
            for _ in 0..<6 { ownTypes.insert(try #require(try owned.next()).type) }
            #expect(
                ownTypes.isSuperset(of: ["docker.endpoint.created", "docker.endpoint.joined", "allocation.created"]))
            let audit = try await client.get("/audit?limit=500")
            let actions = (audit.object["items"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String }
            for action in [
                "docker.network.create", "docker.endpoint.create", "docker.endpoint.join", "docker.endpoint.leave",
                "docker.endpoint.delete", "docker.network.delete", "allocation.create", "allocation.release",
            ] {
                #expect(actions.contains(action), "\(action)")
            }
        }
    }

    @Test func dockerGivenMACAndUnknownNetwork() async throws {
        try await withDaemon { daemon, plugin in
            #expect(try await plugin.call("NetworkDriver.CreateNetwork", network("n2", ["pf": Self.pf])).body == "{}")
            let given = "02:11:22:33:44:55"
            let created = try await plugin.call("NetworkDriver.CreateEndpoint", endpoint("n2", "e2", mac: given))
            #expect(created.status == 200)
            #expect(created.json["Interface"] as? [String: String] == [:])
            let held = try await daemon.client().get("/allocations?owner=docker:n2/e2")
            let config = (held.object["items"] as? [[String: Any]])?.first?["config"] as? [String: Any]
            #expect(config?["mac"] as? String == given)
            let missing = try await plugin.call("NetworkDriver.CreateEndpoint", endpoint("nope", "e3"))
            #expect(missing.status == 404 && missing.err.contains("docker network create -d sriovd"))
            let join = try await plugin.call(
                "NetworkDriver.Join", #"{"NetworkID":"n2","EndpointID":"zz","SandboxKey":"/var/run/docker/netns/x"}"#)
            #expect(join.status == 404 && join.err.contains("has no endpoint 'zz'"))
            let refused = try await daemon.client().get("/audit?action=docker.endpoint.join")
            let event = (refused.object["items"] as? [[String: Any]])?.last
            #expect(event?["outcome"] as? String == "failure" && event?["target"] as? String == "docker-endpoint:n2/zz")
        }
    }

    @Test func adminReleasesAnEndpointDockerForgot() async throws {
        try await withDaemon { daemon, plugin in
            #expect(try await plugin.call("NetworkDriver.CreateNetwork", network("n3", ["pf": Self.pf])).body == "{}")
            #expect(try await plugin.call("NetworkDriver.CreateEndpoint", endpoint("n3", "gone")).status == 200)
            let client = try daemon.client()
            let listed = try await client.get("/docker/networks")
            let endpoints = (listed.object["items"] as? [[String: Any]])?.first?["endpoints"] as? [[String: Any]]
            #expect(endpoints?.first?["owner"] as? String == "docker:n3/gone")
            #expect(endpoints?.first?["allocation_state"] as? String == "active")
            // An endpoint whose allocation an admin released cannot be joined: its VF may be someone else's now.
            #expect(try await plugin.call("NetworkDriver.CreateEndpoint", endpoint("n3", "taken")).status == 200)
            let held = try await client.get("/allocations?owner=docker:n3/taken")
            let id = try #require((held.object["items"] as? [[String: Any]])?.first?["id"] as? String)
            #expect(try await client.request("DELETE", "/allocations/\(id)").status == 204)
            let join = try await plugin.call(
                "NetworkDriver.Join", #"{"NetworkID":"n3","EndpointID":"taken","SandboxKey":"/var/run/docker/netns/t"}"#
            )
            #expect(join.status == 404 && join.err.contains(id))
            #expect(try await plugin.call("NetworkDriver.DeleteEndpoint", ids("n3", "taken")).body == "{}")
            let released = try await client.request("DELETE", "/docker/networks/n3/endpoints/gone")
            #expect(released.status == 204)
            let again = try await client.request("DELETE", "/docker/networks/n3/endpoints/gone")
            #expect(again.status == 404)
            let gone = try await client.get("/allocations?owner=docker:n3/gone")
            #expect((gone.object["items"] as? [Any])?.isEmpty == true)
            #expect(try await plugin.call("NetworkDriver.DeleteNetwork", #"{"NetworkID":"n3"}"#).body == "{}")
            // An allocation of an endpoint whose record was never written (sriovd stopped between CreateEndpoint's
            // two commits): Docker's DeleteEndpoint still releases it.
            let lost = try await client.request(
                "POST", "/allocations", json: ["owner": "docker:n3/lost", "pf": Self.pf],
                headers: ["Content-Type": "application/json"])
            #expect(lost.status == 201)
            #expect(try await plugin.call("NetworkDriver.DeleteEndpoint", ids("n3", "lost")).body == "{}")
            let after = try await client.get("/allocations?owner=docker:n3/lost")
            #expect((after.object["items"] as? [Any])?.isEmpty == true)
        }
    }
}

/// A veth pair whose first end carries a simulated VF's netdev name, so the VF has a real netdev.
struct Veth {
    let name: String

    init(_ name: String) throws {
        self.name = name
        _ = try Self.ip(["link", "del", name])
        let made = try Self.ip([
            "link", "add", name, "mtu", "1500", "type", "veth", "peer", "name", "pd" + name.suffix(10),
        ])
        guard made.status == 0 else { throw VethError(message: "ip link add \(name): \(made.output)") }
    }

    func mtu() throws -> Int {
        let shown = try Self.ip(["-j", "link", "show", "dev", name])
        let links = try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [[String: Any]]
        return try #require(links?.first?["mtu"] as? Int)
    }

    func remove() { _ = try? Self.ip(["link", "del", name]) }

    static func ip(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/sbin/ip")
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

struct VethError: Error { var message: String }
