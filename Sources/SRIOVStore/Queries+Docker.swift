import FoundationEssentials
import SRIOVCore

// The SQL of Docker networks and endpoints (migration 0006), and the views that forward to it.

extension Database {
    private static let networkColumns = "network_id, options, gateway, created_at"
    private static let endpointColumns = "network_id, endpoint_id, allocation_id, mac, sandbox, created_at"

    func dockerNetworks() throws(StoreError) -> [DockerNetwork] {
        try query("SELECT \(Self.networkColumns) FROM docker_networks ORDER BY created_at, network_id") {
            row throws(StoreError) in try decodeNetwork(row)
        }
    }

    func dockerNetwork(id: String) throws(StoreError) -> DockerNetwork? {
        try queryFirst("SELECT \(Self.networkColumns) FROM docker_networks WHERE network_id = ?", [id]) {
            row throws(StoreError) in try decodeNetwork(row)
        }
    }

    private func decodeNetwork(_ row: Row) throws(StoreError) -> DockerNetwork {
        let options: [String: String]
        do {
            options = try jsonDecoder.decode([String: String].self, from: Data(row.text(1).utf8))
        } catch {
            throw .corruptData("docker_networks.options: \(error)")
        }
        return DockerNetwork(
            networkID: row.text(0), options: options, gateway: row.optionalText(2), createdAt: row.text(3))
    }

    func insertDockerNetwork(_ network: DockerNetwork) throws(StoreError) {
        let options: String
        do {
            options = String(decoding: try jsonEncoder.encode(network.options), as: UTF8.self)
        } catch {
            throw .corruptData("docker_networks.options: \(error)")
        }
        try execute(
            "INSERT INTO docker_networks (network_id, options, gateway, created_at) VALUES (?, ?, ?, ?)",
            network.networkID, options, network.gateway, network.createdAt)
    }

    func deleteDockerNetwork(id: String) throws(StoreError) -> Bool {
        try execute("DELETE FROM docker_networks WHERE network_id = ?", id)
        return changes == 1
    }

    func dockerEndpoints(network: String?) throws(StoreError) -> [DockerEndpoint] {
        let filter = network == nil ? "" : " WHERE network_id = ?"
        return try query(
            "SELECT \(Self.endpointColumns) FROM docker_endpoints\(filter) ORDER BY created_at, endpoint_id",
            network.map { [$0] } ?? []
        ) { row throws(StoreError) in decodeEndpoint(row) }
    }

    func dockerEndpoint(network: String, endpoint: String) throws(StoreError) -> DockerEndpoint? {
        try queryFirst(
            "SELECT \(Self.endpointColumns) FROM docker_endpoints WHERE network_id = ? AND endpoint_id = ?",
            [network, endpoint]
        ) { row throws(StoreError) in decodeEndpoint(row) }
    }

    private func decodeEndpoint(_ row: Row) -> DockerEndpoint {
        DockerEndpoint(
            networkID: row.text(0), endpointID: row.text(1), allocationID: row.text(2), mac: row.text(3),
            sandbox: row.optionalText(4), createdAt: row.text(5))
    }

    func insertDockerEndpoint(_ endpoint: DockerEndpoint) throws(StoreError) {
        try execute(
            """
            INSERT INTO docker_endpoints (network_id, endpoint_id, allocation_id, mac, sandbox, created_at)
            VALUES (?, ?, ?, ?, ?, ?)
            """, endpoint.networkID, endpoint.endpointID, endpoint.allocationID, endpoint.mac, endpoint.sandbox,
            endpoint.createdAt)
    }

    func setDockerEndpointSandbox(network: String, endpoint: String, sandbox: String?) throws(StoreError) {
        try execute(
            "UPDATE docker_endpoints SET sandbox = ? WHERE network_id = ? AND endpoint_id = ?", sandbox, network,
            endpoint)
    }

    func deleteDockerEndpoint(network: String, endpoint: String) throws(StoreError) -> Bool {
        try execute("DELETE FROM docker_endpoints WHERE network_id = ? AND endpoint_id = ?", network, endpoint)
        return changes == 1
    }
}

extension StoreView {
    /// Every Docker network, oldest first.
    public func dockerNetworks() throws(StoreError) -> [DockerNetwork] { try connection().dockerNetworks() }

    public func dockerNetwork(id: String) throws(StoreError) -> DockerNetwork? {
        try connection().dockerNetwork(id: id)
    }

    /// The endpoints of one network (or of all), oldest first.
    public func dockerEndpoints(network: String? = nil) throws(StoreError) -> [DockerEndpoint] {
        try connection().dockerEndpoints(network: network)
    }

    public func dockerEndpoint(network: String, endpoint: String) throws(StoreError) -> DockerEndpoint? {
        try connection().dockerEndpoint(network: network, endpoint: endpoint)
    }
}

extension Transaction {
    public func insertDockerNetwork(_ network: DockerNetwork) throws(StoreError) {
        try connection().insertDockerNetwork(network)
    }

    /// Removes a network; false when there was none. Its endpoints must be gone first.
    @discardableResult
    public func deleteDockerNetwork(id: String) throws(StoreError) -> Bool {
        try connection().deleteDockerNetwork(id: id)
    }

    public func insertDockerEndpoint(_ endpoint: DockerEndpoint) throws(StoreError) {
        try connection().insertDockerEndpoint(endpoint)
    }

    /// Records the sandbox an endpoint joined, or nil when it left.
    public func setDockerEndpointSandbox(network: String, endpoint: String, sandbox: String?) throws(StoreError) {
        try connection().setDockerEndpointSandbox(network: network, endpoint: endpoint, sandbox: sandbox)
    }

    @discardableResult
    public func deleteDockerEndpoint(network: String, endpoint: String) throws(StoreError) -> Bool {
        try connection().deleteDockerEndpoint(network: network, endpoint: endpoint)
    }
}
