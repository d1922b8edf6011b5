/// A Docker network of the sriovd driver, as Docker created it: its options kept as given.
public struct DockerNetwork: Hashable, Sendable {
    public var networkID: String
    /// The `com.docker.network.generic` options (`--opt key=value`), validated when the network was created.
    public var options: [String: String]
    /// The IPv4 gateway IPAM gave the network, without its prefix length.
    public var gateway: String?
    public var createdAt: String

    public init(networkID: String, options: [String: String], gateway: String?, createdAt: String) {
        self.networkID = networkID
        self.options = options
        self.gateway = gateway
        self.createdAt = createdAt
    }
}

/// A Docker endpoint: the allocation it holds from CreateEndpoint until DeleteEndpoint.
public struct DockerEndpoint: Hashable, Sendable {
    public var networkID: String
    public var endpointID: String
    public var allocationID: String
    public var mac: String
    /// The sandbox (`SandboxKey`) while joined; nil otherwise.
    public var sandbox: String?
    public var createdAt: String

    public init(
        networkID: String, endpointID: String, allocationID: String, mac: String, sandbox: String?, createdAt: String
    ) {
        self.networkID = networkID
        self.endpointID = endpointID
        self.allocationID = allocationID
        self.mac = mac
        self.sandbox = sandbox
        self.createdAt = createdAt
    }

    /// The owner of the endpoint's allocation.
    public var owner: String { Self.owner(network: networkID, endpoint: endpointID) }

    public static func owner(network: String, endpoint: String) -> String { "docker:\(network)/\(endpoint)" }
}
