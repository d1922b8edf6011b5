/// Where a held VF's netdev went: the network namespace a CNI plugin moved it into, under which name, and what it
/// was called (and its MTU and MAC) in the host namespace, so that it can be put back after a restart or a crash.
///
/// sriovd records it for its client and never acts on it: a netdev in another namespace is reached PF-side (VF
/// settings over the PF's rtnetlink), and sysfs simply stops listing it under the VF's `net/` folder.
public struct Attachment: Hashable, Sendable, Codable {
    /// The namespace's path, as the runtime gave it (`/run/netns/NAME`, `/proc/PID/ns/net`).
    public var netns: String
    /// The netdev's name inside the namespace (`CNI_IFNAME`).
    public var ifname: String
    /// Its name in the host namespace before it was moved.
    public var originalIfname: String
    /// Its MTU before it was moved.
    public var originalMTU: Int
    /// Its hardware address before it was moved, when the client changed it.
    public var originalMAC: String?
    /// When it was recorded (RFC 3339).
    public var attachedAt: String

    public init(
        netns: String, ifname: String, originalIfname: String, originalMTU: Int, originalMAC: String?,
        attachedAt: String
    ) {
        self.netns = netns
        self.ifname = ifname
        self.originalIfname = originalIfname
        self.originalMTU = originalMTU
        self.originalMAC = originalMAC
        self.attachedAt = attachedAt
    }

    enum CodingKeys: String, CodingKey {
        case netns, ifname
        case originalIfname = "original_ifname"
        case originalMTU = "original_mtu"
        case originalMAC = "original_mac"
        case attachedAt = "attached_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([
            .netns: netns, .ifname: ifname, .originalIfname: originalIfname, .originalMTU: originalMTU,
            .originalMAC: originalMAC, .attachedAt: attachedAt,
        ])
    }

    /// Why the attachment cannot be recorded, or nil. Names follow the kernel's rules (`IFNAMSIZ`: at most 15
    /// bytes, no `/`, no whitespace, not `.` or `..`); an MTU is 68 to 65535.
    public func problem() -> (field: String, reason: String)? {
        if netns.isEmpty || !netns.hasPrefix("/") || netns.utf8.count > 4096 {
            return ("netns", "must be an absolute path of at most 4096 bytes")
        }
        for (field, name) in [("ifname", ifname), ("original_ifname", originalIfname)]
        where !Self.isValidInterfaceName(name) {
            return (field, "must be an interface name: 1 to 15 bytes, no '/', ':' or whitespace, not '.' or '..'")
        }
        if !(68...65535).contains(originalMTU) { return ("original_mtu", "must be from 68 to 65535") }
        if let originalMAC, !Self.isMAC(originalMAC) {
            return ("original_mac", "must be a MAC address such as 02:00:00:00:00:01")
        }
        return nil
    }

    public static func isValidInterfaceName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...15).contains(bytes.count), name != ".", name != ".." else { return false }
        return !bytes.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || $0 <= 0x20 || $0 == 0x7f }
    }

    static func isMAC(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && UInt8($0, radix: 16) != nil }
    }
}
