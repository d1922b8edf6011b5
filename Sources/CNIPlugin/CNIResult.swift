import Glibc

/// Builds the ADD result (SPEC.md, section 5 "ADD Success") in the version the configuration asked for:
/// 0.4.0 keeps `ips[].version`; 1.0.0 drops it; 1.1.0 adds `mtu`, `pciID` and `socketPath` to interfaces and
/// `mtu`, `advmss`, `priority`, `table`, `scope` to routes.
enum CNIResult {
    static func make(
        version: String, interface: [String: JSON], ipam: JSON?, dns: JSON?, previous: JSON?
    ) -> JSON {
        let modern = CNIVersion.isAtLeast(version, "1.1.0")
        let hasIPVersion = !CNIVersion.isAtLeast(version, "1.0.0")
        var interfaces = previous?["interfaces"]?.array ?? []
        let index = interfaces.count
        var own = interface
        if !modern { for key in ["mtu", "pciID", "socketPath"] { own[key] = nil } }
        interfaces.append(.object(own))

        func ipEntry(_ entry: JSON, interface: Int?) -> JSON {
            var members = entry.object ?? [:]
            if let interface { members["interface"] = .number(Double(interface)) }
            if hasIPVersion {
                let address = members["address"]?.string ?? ""
                members["version"] = .string(address.contains(":") ? "6" : "4")
            } else {
                members["version"] = nil
            }
            return .object(members)
        }
        func routeEntry(_ entry: JSON) -> JSON {
            guard !modern, var members = entry.object else { return entry }
            for key in members.keys where key != "dst" && key != "gw" { members[key] = nil }
            return .object(members)
        }
        let ips =
            (previous?["ips"]?.array ?? []).map { ipEntry($0, interface: nil) }
            + (ipam?["ips"]?.array ?? []).map { ipEntry($0, interface: index) }
        let routes = ((previous?["routes"]?.array ?? []) + (ipam?["routes"]?.array ?? [])).map(routeEntry)
        var result: [String: JSON] = ["cniVersion": .string(version), "interfaces": .array(interfaces)]
        if !ips.isEmpty { result["ips"] = .array(ips) }
        if !routes.isEmpty { result["routes"] = .array(routes) }
        if let value = ipam?["dns"] ?? dns ?? previous?["dns"], value.object?.isEmpty == false { result["dns"] = value }
        return .object(result)
    }
}

/// An IP prefix in CIDR notation (`10.1.0.5/24`, `fd00::5/64`), parsed with inet_pton.
struct IPPrefix: Hashable {
    var address: [UInt8]
    var length: UInt8

    init?(cidr text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = Self.parse(String(parts[0])), let length = UInt8(parts[1]),
            Int(length) <= address.count * 8
        else { return nil }
        self.address = address
        self.length = length
    }

    /// An address without a prefix length.
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
