import FoundationEssentials

// Docker's remote network driver protocol (libnetwork docs/remote.md): request and response bodies with Docker's
// own key names. Requests ignore keys they do not know: Docker may add fields in later versions.

/// `/NetworkDriver.CreateNetwork`.
struct DockerCreateNetworkRequest: Decodable, Sendable {
    var networkID: String
    /// `Options["com.docker.network.generic"]`: the `--opt key=value` pairs.
    var genericOptions: [String: String]
    var ipv4Data: [DockerIPAMData]

    enum CodingKeys: String, CodingKey {
        case networkID = "NetworkID"
        case options = "Options"
        case ipv4Data = "IPv4Data"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        networkID = try container.decode(String.self, forKey: .networkID)
        ipv4Data = try container.decodeIfPresent([DockerIPAMData].self, forKey: .ipv4Data) ?? []
        let options = try container.decodeIfPresent(DockerNetworkOptionMap.self, forKey: .options)
        genericOptions = options?.generic ?? [:]
    }
}

/// The `Options` object of CreateNetwork: only `com.docker.network.generic` is read; its values are the `--opt`
/// texts (a number or boolean given by an API client is taken as its text).
struct DockerNetworkOptionMap: Decodable, Sendable {
    var generic: [String: String]

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        generic = [:]
        let key = Key(stringValue: "com.docker.network.generic")
        guard container.contains(key), try !container.decodeNil(forKey: key) else { return }
        let members = try container.nestedContainer(keyedBy: Key.self, forKey: key)
        for member in members.allKeys {
            if let text = try? members.decode(String.self, forKey: member) {
                generic[member.stringValue] = text
            } else if let number = try? members.decode(Int.self, forKey: member) {
                generic[member.stringValue] = String(number)
            } else if let flag = try? members.decode(Bool.self, forKey: member) {
                generic[member.stringValue] = String(flag)
            } else {
                throw DecodingError.typeMismatch(
                    String.self,
                    .init(codingPath: members.codingPath + [member], debugDescription: "must be a text value"))
            }
        }
    }
}

/// One entry of `IPv4Data`/`IPv6Data`.
struct DockerIPAMData: Decodable, Sendable {
    var pool: String?
    var gateway: String?

    enum CodingKeys: String, CodingKey {
        case pool = "Pool"
        case gateway = "Gateway"
    }
}

/// The body of the calls that name a network and an endpoint: DeleteEndpoint, EndpointOperInfo, Leave,
/// Program/RevokeExternalConnectivity (their `Options` are not read).
struct DockerEndpointRequest: Decodable, Sendable {
    var networkID: String
    var endpointID: String

    enum CodingKeys: String, CodingKey {
        case networkID = "NetworkID"
        case endpointID = "EndpointID"
    }
}

/// `/NetworkDriver.DeleteNetwork`.
struct DockerNetworkRequest: Decodable, Sendable {
    var networkID: String

    enum CodingKeys: String, CodingKey { case networkID = "NetworkID" }
}

/// `/NetworkDriver.CreateEndpoint`.
struct DockerCreateEndpointRequest: Decodable, Sendable {
    var networkID: String
    var endpointID: String
    var interface: DockerInterface?

    enum CodingKeys: String, CodingKey {
        case networkID = "NetworkID"
        case endpointID = "EndpointID"
        case interface = "Interface"
    }
}

/// An endpoint's interface as CreateEndpoint sends and answers it (empty fields are left out of answers).
struct DockerInterface: Codable, Sendable, Equatable {
    var address: String?
    var addressIPv6: String?
    var macAddress: String?

    enum CodingKeys: String, CodingKey {
        case address = "Address"
        case addressIPv6 = "AddressIPv6"
        case macAddress = "MacAddress"
    }
}

/// `/NetworkDriver.Join`.
struct DockerJoinRequest: Decodable, Sendable {
    var networkID: String
    var endpointID: String
    var sandboxKey: String

    enum CodingKeys: String, CodingKey {
        case networkID = "NetworkID"
        case endpointID = "EndpointID"
        case sandboxKey = "SandboxKey"
    }
}

/// Join's answer: the netdev libnetwork moves into the sandbox, renamed `DstPrefix` + an index.
struct DockerJoinResponse: Encodable, Sendable {
    struct InterfaceName: Encodable, Sendable {
        var srcName: String
        var dstPrefix: String

        enum CodingKeys: String, CodingKey {
            case srcName = "SrcName"
            case dstPrefix = "DstPrefix"
        }
    }

    var interfaceName: InterfaceName
    var gateway: String?
    /// The VF is the container's connectivity: libnetwork adds no docker_gwbridge interface beside it.
    var disableGatewayService: Bool

    enum CodingKeys: String, CodingKey {
        case interfaceName = "InterfaceName"
        case gateway = "Gateway"
        case disableGatewayService = "DisableGatewayService"
    }
}

/// CreateEndpoint's answer: the MAC sriovd set when Docker gave none; an empty `Interface` otherwise.
struct DockerCreateEndpointResponse: Encodable, Sendable {
    var interface: DockerInterface?

    enum CodingKeys: String, CodingKey { case interface = "Interface" }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(interface ?? DockerInterface(), forKey: .interface)
    }
}
