import SRIOVCore

/// A Docker network's `--opt key=value` options, checked with the REST API's own rules: they become the body of an
/// allocation request (`POST /allocations`), decoded and validated by the same code.
struct DockerNetworkOptions: Sendable {
    /// Options naming where the VF comes from: `pf`, `vf`, or the selector's keys (`pf_driver` is its `driver`).
    static let placementKeys: [String: String] = [
        "vendor_id": "vendor_id", "device_id": "device_id", "pf_driver": "driver", "pf_interface": "pf_interface",
        "numa_node": "numa_node", "placement": "placement", "prefer_numa_node": "prefer_numa_node",
    ]
    /// VF settings, as `config` of an allocation.
    static let configKeys: Set<String> = [
        "mac", "vlan", "qos", "vlan_proto", "spoof_check", "trust", "link_state", "min_tx_rate", "max_tx_rate",
        "driver",
    ]
    static let integerKeys: Set<String> = [
        "vlan", "qos", "min_tx_rate", "max_tx_rate", "numa_node", "prefer_numa_node", "mtu",
    ]
    static let booleanKeys: Set<String> = ["spoof_check", "trust"]
    static var knownKeys: [String] {
        (["pf", "vf", "mtu"] + Array(placementKeys.keys) + Array(configKeys)).sorted()
    }

    let options: [String: String]
    /// The MTU the VF's netdev gets while it is in a container.
    let mtu: Int?

    /// Checks `options`; throws `.dockerOption` naming the option at fault and what it must be.
    init(_ options: [String: String]) throws(SRIOVError) {
        self.options = options
        for key in options.keys.sorted() where !Self.knownKeys.contains(key) {
            throw .dockerOption(
                key, "is not an option of the sriovd driver; known: \(Self.knownKeys.joined(separator: ", "))")
        }
        mtu = try Self.integer("mtu", options["mtu"])
        if let mtu, !(68...65535).contains(mtu) { throw .dockerOption("mtu", "must be from 68 to 65535") }
        if options["driver"] == "vfio-pci" {
            throw .dockerOption(
                "driver", "vfio-pci takes the VF's netdev away, and a container needs it; leave driver out")
        }
        _ = try allocationRequest(owner: "docker:check", mac: nil)
    }

    /// The allocation an endpoint of this network asks for: owner, where from, the settings (and `mac`, which
    /// replaces the network's own).
    func allocationRequest(owner: String, mac: String?) throws(SRIOVError) -> AllocationRequest {
        var body: [String: JSONValue] = ["owner": .string(owner)]
        var selector: [String: JSONValue] = [:]
        var config: [String: JSONValue] = [:]
        for (key, text) in options where key != "mtu" {
            let value = try Self.value(key, text)
            if key == "pf" || key == "vf" {
                body[key] = value
            } else if let field = Self.placementKeys[key] {
                selector[field] = value
            } else {
                config[key] = value
            }
        }
        if let mac { config["mac"] = .string(mac) }
        if body["pf"] == nil && body["vf"] == nil { body["selector"] = .object(selector) }
        if body["pf"] != nil || body["vf"] != nil, let key = selector.keys.sorted().first {
            throw .dockerOption(key, "cannot be given with pf or vf; a selector chooses among all PFs")
        }
        if !config.isEmpty { body["config"] = .object(config) }
        do {
            return try JSONBody.decode(AllocationRequest.self, from: Array(JSONValue.object(body).text.utf8))
        } catch {
            throw Self.optionError(error)
        }
    }

    /// An allocation-request error renamed to the option it came from (`config.vlan` is `--opt vlan`).
    private static func optionError(_ error: SRIOVError) -> SRIOVError {
        guard case .invalidField(let field, let why) = error else { return error }
        var name = field
        for prefix in ["config.", "selector."] where name.hasPrefix(prefix) { name.removeFirst(prefix.count) }
        if name == "driver" && field.hasPrefix("selector.") { name = "pf_driver" }
        return .dockerOption(name, why)
    }

    private static func value(_ key: String, _ text: String) throws(SRIOVError) -> JSONValue {
        if integerKeys.contains(key) { return .int(try integer(key, text) ?? 0) }
        if booleanKeys.contains(key) {
            switch text.lowercased() {
            case "true", "on", "1": return .bool(true)
            case "false", "off", "0": return .bool(false)
            default: throw .dockerOption(key, "must be true or false (or on/off)")
            }
        }
        return .string(text)
    }

    private static func integer(_ key: String, _ text: String?) throws(SRIOVError) -> Int? {
        guard let text else { return nil }
        guard let value = Int(text) else { throw .dockerOption(key, "must be an integer, e.g. --opt \(key)=100") }
        return value
    }
}
