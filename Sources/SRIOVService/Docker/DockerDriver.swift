import SRIOVCore
import SRIOVStore

/// The use cases behind Docker's remote network driver calls. Networks and endpoints live in SQLite; an endpoint
/// holds an allocation made by `AllocationService` (owner `docker:<network>/<endpoint>`), so VFs are chosen,
/// configured, restored and audited as for any other consumer. Every change is audited (`docker.*` actions), and
/// so shows in the event stream.
struct DockerDriver: Sendable {
    let core: ServiceCore
    let netdevs: DockerNetdevs

    // MARK: - Networks

    /// Validates the options and records the network; the same id with the same options again changes nothing.
    func createNetwork(_ request: DockerCreateNetworkRequest, caller: Caller) async throws(SRIOVError) {
        try Self.checkID("NetworkID", request.networkID)
        let target = "docker-network:" + request.networkID
        let gateway = request.ipv4Data.compactMap(\.gateway).first.map { String($0.prefix { $0 != "/" }) }
        let network = DockerNetwork(
            networkID: request.networkID, options: request.genericOptions, gateway: gateway,
            createdAt: Timestamp.now())
        let validation = Result { () throws(SRIOVError) in _ = try DockerNetworkOptions(request.genericOptions) }
        let result: Result<Void, SRIOVError> = try await core.perform { tx in
            let details: [String: JSONValue] = ["options": Self.json(network.options)]
            if case .failure(let error) = validation {
                try tx.appendAudit(caller.failure("docker.network.create", target: target, error, details: details))
                return .failure(error)
            }
            if let existing = try tx.dockerNetwork(id: network.networkID) {
                guard existing.options == network.options else {
                    let error = SRIOVError.dockerOption(
                        "NetworkID", "names a network sriovd already has with other options; delete it first")
                    try tx.appendAudit(caller.failure("docker.network.create", target: target, error, details: details))
                    return .failure(error)
                }
                return .success(())
            }
            try tx.insertDockerNetwork(network)
            try tx.appendAudit(
                caller.event("docker.network.create", target: target, outcome: .success, details: details))
            return .success(())
        }
        try result.get()
    }

    /// Removes a network without endpoints; an unknown network is already gone (success).
    func deleteNetwork(id: String, caller: Caller) async throws(SRIOVError) {
        let target = "docker-network:" + id
        let result: Result<Void, SRIOVError> = try await core.perform { tx in
            let endpoints = try tx.dockerEndpoints(network: id)
            guard endpoints.isEmpty else {
                let error = SRIOVError.dockerNetworkInUse(id, endpoints: endpoints.count)
                try tx.appendAudit(caller.failure("docker.network.delete", target: target, error))
                return .failure(error)
            }
            let existed = try tx.deleteDockerNetwork(id: id)
            try tx.appendAudit(
                caller.event(
                    "docker.network.delete", target: target, outcome: .success, details: ["existed": .bool(existed)]))
            return .success(())
        }
        try result.get()
    }

    // MARK: - Endpoints

    /// Allocates the endpoint's VF with the network's settings and returns its MAC. Idempotent per endpoint: a
    /// repeat (or a retry after a crash between the two commits) finds the same allocation.
    func createEndpoint(_ request: DockerCreateEndpointRequest, caller: Caller) async throws(SRIOVError) -> String {
        let (net, ep) = (request.networkID, request.endpointID)
        try Self.checkID("NetworkID", net)
        try Self.checkID("EndpointID", ep)
        if let existing = try read({ try $0.dockerEndpoint(network: net, endpoint: ep) }) { return existing.mac }
        guard let network = try read({ try $0.dockerNetwork(id: net) }) else {
            try await core.audit(
                caller.failure(
                    "docker.endpoint.create", target: "docker-endpoint:\(net)/\(ep)", .dockerNetworkNotFound(net)))
            throw .dockerNetworkNotFound(net)
        }
        let options = try DockerNetworkOptions(network.options)
        let given = request.interface?.macAddress.flatMap { $0.isEmpty ? nil : $0 }
        let mac = given ?? network.options["mac"] ?? Self.mac(endpoint: ep)
        let owner = DockerEndpoint.owner(network: net, endpoint: ep)
        let allocationRequest = try options.allocationRequest(owner: owner, mac: mac)
        let key = (key: owner, requestHash: SHA256.hex(Array("docker \(owner) \(mac)".utf8)))
        let outcome = try await AllocationService(core: core).allocate(
            allocationRequest, idempotency: key, caller: caller, render: { Array($0.id.utf8) })
        let allocationID: String
        switch outcome {
        case .created(let allocation, _): allocationID = allocation.id
        case .replayed(let replay):
            guard replay.status == 201 else { throw .idempotentRequestInterrupted(owner) }
            allocationID = String(decoding: replay.body, as: UTF8.self)
        }
        let endpoint = DockerEndpoint(
            networkID: net, endpointID: ep, allocationID: allocationID, mac: mac, sandbox: nil,
            createdAt: Timestamp.now())
        _ = try await core.perform { tx in
            guard try tx.dockerEndpoint(network: net, endpoint: ep) == nil else { return }
            try tx.insertDockerEndpoint(endpoint)
            try tx.appendAudit(
                caller.event(
                    "docker.endpoint.create", target: "docker-endpoint:\(net)/\(ep)", outcome: .success,
                    details: ["allocation": .string(allocationID), "mac": .string(mac), "owner": .string(owner)]))
        }
        return mac
    }

    /// A locally administered unicast MAC derived from the endpoint id (the same for every retry).
    static func mac(endpoint: String) -> String {
        let hex = Array(SHA256.hex(Array(endpoint.utf8)).prefix(10))
        return "02:" + stride(from: 0, to: 10, by: 2).map { String(hex[$0..<$0 + 2]) }.joined(separator: ":")
    }

    /// Gives the VF's netdev the network's MTU (recording what it had on the allocation's attachment), and names it
    /// for libnetwork to move.
    func join(_ request: DockerJoinRequest, caller: Caller) async throws(SRIOVError) -> DockerJoinResponse {
        do {
            return try await joinUnaudited(request, caller: caller)
        } catch {
            let target = "docker-endpoint:\(request.networkID)/\(request.endpointID)"
            try await core.audit(caller.failure("docker.endpoint.join", target: target, error))
            throw error
        }
    }

    private func joinUnaudited(_ request: DockerJoinRequest, caller: Caller) async throws(SRIOVError)
        -> DockerJoinResponse
    {
        let (net, ep) = (request.networkID, request.endpointID)
        guard let endpoint = try read({ try $0.dockerEndpoint(network: net, endpoint: ep) }) else {
            throw .dockerEndpointNotFound(network: net, endpoint: ep)
        }
        let network = try read { try $0.dockerNetwork(id: net) }
        let netdev = try netdevName(of: endpoint)
        let link = try readLink(netdev)
        let attachment = Attachment(
            netns: request.sandboxKey, ifname: "eth0", originalIfname: netdev, originalMTU: link.mtu,
            originalMAC: link.mac, attachedAt: Timestamp.now())
        _ = try await AllocationService(core: core).attach(
            id: endpoint.allocationID, attachment: attachment, caller: caller)
        let mtu = try network.map { network throws(SRIOVError) in try DockerNetworkOptions(network.options).mtu }
        if let mtu = mtu ?? nil, mtu != link.mtu {
            try writeLink(link.index, mtu: mtu, mac: nil)
        }
        _ = try await core.perform { tx in
            try tx.setDockerEndpointSandbox(network: net, endpoint: ep, sandbox: request.sandboxKey)
            try tx.appendAudit(
                caller.event(
                    "docker.endpoint.join", target: "docker-endpoint:\(net)/\(ep)", outcome: .success,
                    details: [
                        "sandbox": .string(request.sandboxKey), "netdev": .string(netdev),
                        "owner": .string(endpoint.owner),
                    ]))
        }
        return DockerJoinResponse(
            interfaceName: .init(srcName: netdev, dstPrefix: "eth"), gateway: network?.gateway,
            disableGatewayService: true)
    }

    /// Records that the endpoint left its sandbox. libnetwork moves the netdev back after this answer, so the VF
    /// is restored by DeleteEndpoint, which follows. An unknown endpoint has nothing to leave (success).
    func leave(_ request: DockerEndpointRequest, caller: Caller) async throws(SRIOVError) {
        let (net, ep) = (request.networkID, request.endpointID)
        _ = try await core.perform { tx in
            let known = try tx.dockerEndpoint(network: net, endpoint: ep) != nil
            if known { try tx.setDockerEndpointSandbox(network: net, endpoint: ep, sandbox: nil) }
            try tx.appendAudit(
                caller.event(
                    "docker.endpoint.leave", target: "docker-endpoint:\(net)/\(ep)", outcome: .success,
                    details: [
                        "existed": .bool(known), "owner": .string(DockerEndpoint.owner(network: net, endpoint: ep)),
                    ]))
        }
    }

    /// Puts the netdev's MTU and MAC back (once libnetwork has returned it), releases the allocation (sriovd
    /// restores the VF PF-side) and forgets the endpoint. An unknown endpoint is already deleted (success).
    func deleteEndpoint(network net: String, endpoint ep: String, caller: Caller) async throws(SRIOVError) {
        guard let endpoint = try read({ try $0.dockerEndpoint(network: net, endpoint: ep) }) else {
            try await releaseUnrecorded(network: net, endpoint: ep, caller: caller)
            return
        }
        var details: [String: JSONValue] = [
            "allocation": .string(endpoint.allocationID), "owner": .string(endpoint.owner),
        ]
        let attachment = try read({ try $0.allocation(id: endpoint.allocationID) })?.attachment
        if let attachment, let link = try? netdevs.read(attachment.originalIfname) {
            if link.mtu != attachment.originalMTU { try writeLink(link.index, mtu: attachment.originalMTU, mac: nil) }
            details["netdev_mac"] = .string(restoreMAC(attachment, link: link))
        }
        do {
            try await AllocationService(core: core).release(id: endpoint.allocationID, caller: caller)
        } catch .allocationNotFound {
            // Released already (by an admin, or an earlier try of this call).
        }
        _ = try await core.perform { [details] tx in
            try tx.deleteDockerEndpoint(network: net, endpoint: ep)
            try tx.appendAudit(
                caller.event(
                    "docker.endpoint.delete", target: "docker-endpoint:\(net)/\(ep)", outcome: .success,
                    details: details))
        }
    }

    /// An allocation of this endpoint that its record never joined (sriovd stopped between the two commits of
    /// CreateEndpoint, and Docker gave up on the endpoint) is released now, and the release audited.
    private func releaseUnrecorded(network net: String, endpoint ep: String, caller: Caller) async throws(SRIOVError) {
        var filter = AllocationFilter()
        filter.owner = DockerEndpoint.owner(network: net, endpoint: ep)
        filter.state = .active
        for allocation in try read({ try $0.allocations(filter).items }) {
            try await AllocationService(core: core).release(id: allocation.id, caller: caller)
            try await core.audit(
                caller.event(
                    "docker.endpoint.delete", target: "docker-endpoint:\(net)/\(ep)", outcome: .success,
                    details: [
                        "allocation": .string(allocation.id), "owner": .string(allocation.owner),
                        "recorded": .bool(false),
                    ]))
        }
    }

    /// Puts the netdev's own MAC back before the release restores the VF PF-side, and says what happened. A VF
    /// driver may refuse while the PF holds an administrative MAC (igbvf answers EADDRNOTAVAIL); the release then
    /// restores the MAC PF-side, which is the VF's record. Writing it after the release instead would make the VF
    /// driver report that MAC PF-side, which is not the VF's baseline.
    private func restoreMAC(_ attachment: Attachment, link: (index: Int32, mtu: Int, mac: String?)) -> String {
        guard let original = attachment.originalMAC else { return "unknown" }
        guard link.mac != original else { return "as before" }
        do {
            try netdevs.write(link.index, nil, original)
            return "restored"
        } catch {
            return "left to the release: the VF driver refused (\(error.name))"
        }
    }

    // MARK: - Helpers

    /// Docker's ids are 64 hex digits; anything of 1 to 128 printable ASCII characters without `/` is taken.
    static func checkID(_ field: String, _ id: String) throws(SRIOVError) {
        guard (1...128).contains(id.utf8.count), id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x2f }) else {
            throw .invalidField(field, "must be 1 to 128 printable characters without '/' (Docker sends 64 hex digits)")
        }
    }

    private func read<T>(_ body: (ReadView) throws -> T) throws(SRIOVError) -> T {
        do {
            return try core.store.read(body)
        } catch {
            throw .storage(String(describing: error))
        }
    }

    /// The VF's netdev name, from the inventory.
    private func netdevName(of endpoint: DockerEndpoint) throws(SRIOVError) -> String {
        guard let allocation = try read({ try $0.allocation(id: endpoint.allocationID) }),
            allocation.state == .active || allocation.state == .drifted
        else {
            // Released by an admin (or lost with its PF): the endpoint holds no VF to give the container.
            throw .allocationNotFound(endpoint.allocationID)
        }
        guard let vf = core.inventory.snapshot.vf(allocation.vf)?.vf, let name = vf.interface else {
            throw .invalidField(
                "vf",
                "\(allocation.vf) has no netdev on this host (driver \(driver(of: allocation))); bind its VF driver")
        }
        return name
    }

    private func driver(of allocation: Allocation) -> String {
        core.inventory.snapshot.vf(allocation.vf)?.vf.driver ?? "none"
    }

    private func readLink(_ name: String) throws(SRIOVError) -> (index: Int32, mtu: Int, mac: String?) {
        let found: (index: Int32, mtu: Int, mac: String?)?
        do {
            found = try netdevs.read(name)
        } catch {
            throw .kernel(operation: "RTM_GETLINK \(name)", errno: error.errno, name: error.name)
        }
        guard let found else {
            throw .invalidField(
                "vf", "netdev \(name) is not in sriovd's network namespace; is it attached elsewhere?")
        }
        return found
    }

    private func writeLink(_ index: Int32, mtu: Int?, mac: String?) throws(SRIOVError) {
        do {
            try netdevs.write(index, mtu, mac)
        } catch {
            throw .kernel(operation: "RTM_NEWLINK (mtu, address)", errno: error.errno, name: error.name)
        }
    }

    static func json(_ options: [String: String]) -> JSONValue {
        .object(options.mapValues { .string($0) })
    }
}
