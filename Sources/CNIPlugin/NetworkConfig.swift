import SRIOVCore

/// The plugin configuration on stdin (SPEC.md, sections 1 and 3), with sriov-cni's keys where they mean the same
/// and sriovd's own. Errors are code 7 and name the key.
///
/// | key | meaning |
/// |---|---|
/// | `socket` | sriovd's Unix socket (default `/run/sriovd/sriovd.sock`) |
/// | `deviceID` (or `runtimeConfig.deviceID`) | exactly this VF (what Multus passes from the device plugin) |
/// | `pf` | any free VF of this PF |
/// | `selector` | any free VF matching sriovd's selector (`vendor_id`, `device_id`, `driver`, `pf_interface`, `numa_node`) |
/// | `vlan`, `vlanQoS`, `vlanProto` | VLAN 0-4095, QoS 0-7, `802.1Q` or `802.1ad` |
/// | `mac` (or `runtimeConfig.mac`) | the VF's MAC, set PF-side and on the netdev |
/// | `spoofchk`, `trust` | `on` or `off` |
/// | `link_state` | `auto`, `enable`, `disable` |
/// | `min_tx_rate`, `max_tx_rate` | Mbit/s |
/// | `mtu` | the netdev's MTU in the container |
/// | `driver` | `vfio-pci`: the VF is bound to vfio-pci and no netdev moves |
/// | `ipam` | delegated to the plugin named by `ipam.type`, found on `CNI_PATH` |
public struct NetworkConfig: Sendable {
    public static let defaultSocket = "/run/sriovd/sriovd.sock"

    public var cniVersion: String
    public var name: String
    public var socket: String
    public var deviceID: PCIAddress?
    public var pf: PCIAddress?
    public var selector: JSON?
    /// The VF settings for sriovd (`VFConfig`'s wire form); empty when none is asked.
    public var vfConfig: [String: JSON]
    /// The MAC asked for (runtimeConfig wins), normalised to lower case.
    public var mac: String?
    public var mtu: Int?
    public var wantsVFIO: Bool
    /// `ipam.type`, when IPAM is configured.
    public var ipamType: String?
    public var dns: JSON?
    public var prevResult: JSON?
    /// GC's `cni.dev/valid-attachments`: (containerID, ifname).
    public var validAttachments: [(containerID: String, ifname: String)]
    /// The configuration exactly as received, for delegated plugins.
    public var raw: [UInt8]

    public init(_ bytes: [UInt8], command: CNICommand) throws(CNIError) {
        raw = bytes
        let document: JSON
        do {
            document = try JSON.parse(bytes)
        } catch {
            throw CNIError(.decodingFailure, "the configuration on stdin is not JSON", details: "\(error)")
        }
        guard case .object(let members) = document else {
            throw CNIError(.invalidConfig, "the configuration on stdin is not a JSON object")
        }
        func string(_ key: String) throws(CNIError) -> String? {
            guard let value = members[key], !value.isNull else { return nil }
            guard let text = value.string else { throw CNIError(.invalidConfig, "\(key) must be a string") }
            return text
        }
        cniVersion = try string("cniVersion") ?? ""
        if command == .version {
            name = ""
            socket = Self.defaultSocket
            vfConfig = [:]
            wantsVFIO = false
            validAttachments = []
            return
        }
        guard !cniVersion.isEmpty else {
            throw CNIError(.invalidConfig, "cniVersion is missing", details: "set \"cniVersion\": \"1.1.0\"")
        }
        try CNIVersion.check(cniVersion)
        name = try string("name") ?? ""
        guard !name.isEmpty else { throw CNIError(.invalidConfig, "name is missing: name the network") }
        socket = try string("socket") ?? Self.defaultSocket
        guard socket.hasPrefix("/") else {
            throw CNIError(.invalidConfig, "socket must be an absolute path", details: "got \(socket)")
        }
        let runtime = members["runtimeConfig"]?.object ?? [:]

        func address(_ key: String, _ text: String?) throws(CNIError) -> PCIAddress? {
            guard let text, !text.isEmpty else { return nil }
            guard let value = PCIAddress(text.lowercased()) else {
                throw CNIError(
                    .invalidConfig, "\(key) \(text) is not a PCI address", details: "write it as 0000:3b:02.0")
            }
            return value
        }
        deviceID = try address("runtimeConfig.deviceID", runtime["deviceID"]?.string)
        if deviceID == nil { deviceID = try address("deviceID", try string("deviceID")) }
        pf = try address("pf", try string("pf"))
        if let value = members["selector"], !value.isNull {
            guard value.object != nil else { throw CNIError(.invalidConfig, "selector must be an object") }
            selector = value
        }
        if command == .add, deviceID == nil, pf == nil, selector == nil {
            throw CNIError(
                .invalidConfig, "no VF to take: set deviceID, pf or selector",
                details: "Multus passes deviceID from the device plugin; otherwise name a PF (\"pf\") or a selector")
        }

        vfConfig = try Self.vfSettings(members, runtime: runtime)
        mac = vfConfig["mac"]?.string
        if let value = members["mtu"], !value.isNull {
            guard let number = value.int, (68...65535).contains(number) else {
                throw CNIError(.invalidConfig, "mtu must be an integer from 68 to 65535")
            }
            mtu = number
        }
        switch try string("driver") {
        case nil: wantsVFIO = false
        case "vfio-pci":
            wantsVFIO = true
            vfConfig["driver"] = .string("vfio-pci")
        case let other?:
            throw CNIError(
                .invalidConfig, "driver \(other) is not supported", details: "leave it out, or set it to vfio-pci")
        }
        if let ipam = members["ipam"], !ipam.isNull, ipam.object?.isEmpty == false {
            guard let type = ipam["type"]?.string, !type.isEmpty, !type.contains("/") else {
                throw CNIError(.invalidConfig, "ipam.type must name an IPAM plugin on CNI_PATH, such as host-local")
            }
            ipamType = type
        }
        dns = members["dns"].flatMap { $0.isNull ? nil : $0 }
        prevResult = members["prevResult"].flatMap { $0.isNull ? nil : $0 }
        validAttachments = []
        if command == .gc {
            for entry in members["cni.dev/valid-attachments"]?.array ?? [] {
                guard let id = entry["containerID"]?.string, let ifname = entry["ifname"]?.string else {
                    throw CNIError(
                        .invalidConfig, "cni.dev/valid-attachments entries need containerID and ifname")
                }
                validAttachments.append((id, ifname))
            }
        }
    }

    /// sriov-cni's setting keys as sriovd's `VFConfig`.
    static func vfSettings(_ members: [String: JSON], runtime: [String: JSON]) throws(CNIError) -> [String: JSON] {
        var config: [String: JSON] = [:]
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(CNIError) -> Int? {
            guard let value = members[key], !value.isNull else { return nil }
            guard let number = value.int, range.contains(number) else {
                throw CNIError(
                    .invalidConfig, "\(key) must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }
        func onOff(_ key: String) throws(CNIError) -> Bool? {
            guard let value = members[key], !value.isNull else { return nil }
            switch value {
            case .string("on"), .bool(true): return true
            case .string("off"), .bool(false): return false
            default: throw CNIError(.invalidConfig, "\(key) must be \"on\" or \"off\"")
            }
        }
        if let vlan = try integer("vlan", 0...4095) { config["vlan"] = .number(Double(vlan)) }
        if let qos = try integer("vlanQoS", 0...7) {
            guard config["vlan"] != nil else { throw CNIError(.invalidConfig, "vlanQoS needs vlan") }
            config["qos"] = .number(Double(qos))
        }
        if let value = members["vlanProto"], !value.isNull {
            switch value.string?.lowercased() {
            case "802.1q": config["vlan_proto"] = .string("802.1Q")
            case "802.1ad": config["vlan_proto"] = .string("802.1ad")
            default: throw CNIError(.invalidConfig, "vlanProto must be 802.1q or 802.1ad")
            }
            guard config["vlan"] != nil else { throw CNIError(.invalidConfig, "vlanProto needs vlan") }
        }
        let macText = runtime["mac"]?.string ?? members["mac"]?.string
        if let macText, !macText.isEmpty {
            let mac = macText.lowercased()
            guard Self.parseMAC(mac) != nil else {
                throw CNIError(
                    .invalidConfig, "mac \(macText) is not a MAC address", details: "such as 02:00:00:00:00:01")
            }
            config["mac"] = .string(mac)
        }
        if let on = try onOff("spoofchk") { config["spoof_check"] = .bool(on) }
        if let on = try onOff("trust") { config["trust"] = .bool(on) }
        if let value = members["link_state"], !value.isNull {
            guard let state = value.string, ["auto", "enable", "disable"].contains(state) else {
                throw CNIError(.invalidConfig, "link_state must be auto, enable or disable")
            }
            config["link_state"] = .string(state)
        }
        if let rate = try integer("min_tx_rate", 0...Int(UInt32.max)) { config["min_tx_rate"] = .number(Double(rate)) }
        if let rate = try integer("max_tx_rate", 0...Int(UInt32.max)) { config["max_tx_rate"] = .number(Double(rate)) }
        return config
    }

    /// `aa:bb:cc:dd:ee:ff` as six bytes.
    static func parseMAC(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
