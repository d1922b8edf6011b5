import HTTPServer
import SRIOVCore

/// `/docker/networks`: the Docker networks of the sriovd driver with their endpoints, and the admin's release of an
/// endpoint Docker no longer has (its VF is released and restored, and the release is audited).
extension SRIOVAPI {
    func addDockerRoutes(to router: inout Router) {
        router.add(.GET, "/docker/networks") { request, _, _ in
            answer(request) {
                let (networks, endpoints, states) = try read { view in
                    let endpoints = try view.dockerEndpoints()
                    let states = try endpoints.map { try view.allocation(id: $0.allocationID)?.state.rawValue }
                    return (try view.dockerNetworks(), endpoints, states)
                }
                let state = Dictionary(
                    zip(endpoints.map(\.allocationID), states), uniquingKeysWith: { first, _ in first })
                let byNetwork = Dictionary(grouping: endpoints, by: \.networkID)
                let items = networks.map { Self.json($0, endpoints: byNetwork[$0.networkID] ?? [], states: state) }
                return .json(.ok, Array(JSONValue.object(["items": .array(items), "next": .null]).text.utf8))
            }
        }
        router.add(.DELETE, "/docker/networks/{network}/endpoints/{endpoint}") { request, context, params in
            mutation(request, context) { caller in
                let network = HTTPRequest.percentDecodedPathSegment(params["network"] ?? "")
                let endpoint = HTTPRequest.percentDecodedPathSegment(params["endpoint"] ?? "")
                guard try read({ try $0.dockerEndpoint(network: network, endpoint: endpoint) }) != nil else {
                    let error = SRIOVError.dockerEndpointNotFound(network: network, endpoint: endpoint)
                    try await core.audit(
                        caller.failure(
                            "docker.endpoint.delete", target: "docker-endpoint:\(network)/\(endpoint)", error))
                    throw error
                }
                try await DockerDriver(core: core, netdevs: .kernel).deleteEndpoint(
                    network: network, endpoint: endpoint, caller: caller)
                return HTTPResponse(status: .noContent, headers: HTTPHeaders(), body: [])
            }
        }
    }

    /// A network with its endpoints; `states` are their allocations' states by allocation id.
    static func json(_ network: DockerNetwork, endpoints: [DockerEndpoint], states: [String: String?]) -> JSONValue {
        .object([
            "network_id": .string(network.networkID), "options": DockerDriver.json(network.options),
            "gateway": network.gateway.map(JSONValue.string) ?? .null, "created_at": .string(network.createdAt),
            "endpoints": .array(
                endpoints.map { endpoint in
                    .object([
                        "endpoint_id": .string(endpoint.endpointID), "allocation_id": .string(endpoint.allocationID),
                        "owner": .string(endpoint.owner), "mac": .string(endpoint.mac),
                        "allocation_state": (states[endpoint.allocationID] ?? nil).map(JSONValue.string) ?? .null,
                        "sandbox": endpoint.sandbox.map(JSONValue.string) ?? .null,
                        "created_at": .string(endpoint.createdAt),
                    ])
                }),
        ])
    }
}
