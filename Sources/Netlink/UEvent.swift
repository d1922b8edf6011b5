/// One kernel uevent as broadcast on `NETLINK_KOBJECT_UEVENT`: `ACTION@DEVPATH`, then `KEY=VALUE` strings,
/// each ended by a NUL byte.
public struct UEvent: Sendable, Hashable {
    /// `add`, `remove`, `change`, `bind`, `unbind`, `move`, `online`, `offline`.
    public var action: String
    /// The device's path under /sys, for example `/devices/pci0000:00/0000:00:02.0/0000:02:10.0`.
    public var devpath: String
    /// Every `KEY=VALUE` pair, including `ACTION`, `DEVPATH`, `SUBSYSTEM` and `SEQNUM`.
    public var properties: [String: String]

    public init(action: String, devpath: String, properties: [String: String] = [:]) {
        self.action = action
        self.devpath = devpath
        self.properties = properties
    }

    /// `SUBSYSTEM`: `pci`, `net`, `vfio`, ...
    public var subsystem: String? { properties["SUBSYSTEM"] }
    /// `DRIVER`, on bind and unbind events.
    public var driver: String? { properties["DRIVER"] }
    /// `PCI_SLOT_NAME`, on PCI devices: the address, for example `0000:02:10.0`.
    public var pciSlotName: String? { properties["PCI_SLOT_NAME"] }
    /// `INTERFACE`, on net devices.
    public var interface: String? { properties["INTERFACE"] }
    /// `SEQNUM`: the kernel's uevent counter.
    public var sequenceNumber: UInt64? { properties["SEQNUM"].flatMap { UInt64($0) } }

    public subscript(key: String) -> String? { properties[key] }
}

/// Parses one uevent datagram from the kernel. Returns nil for anything else: udev's re-broadcasts (they
/// begin with `libudev\0`), a missing `@` header, or a header that disagrees with `ACTION`/`DEVPATH`.
/// Never traps on arbitrary bytes.
public func parseUEvent(_ bytes: [UInt8]) -> UEvent? {
    let fields = bytes.split(separator: 0, omittingEmptySubsequences: true)
    guard let first = fields.first, let at = first.firstIndex(of: UInt8(ascii: "@")) else { return nil }
    var event = UEvent(
        action: String(decoding: first[first.startIndex..<at], as: UTF8.self),
        devpath: String(decoding: first[(at + 1)...], as: UTF8.self))
    guard !event.action.isEmpty, event.devpath.hasPrefix("/") else { return nil }
    for field in fields.dropFirst() {
        guard let equals = field.firstIndex(of: UInt8(ascii: "=")), equals > field.startIndex else { continue }
        let key = String(decoding: field[field.startIndex..<equals], as: UTF8.self)
        event.properties[key] = String(decoding: field[(equals + 1)...], as: UTF8.self)
    }
    if let action = event.properties["ACTION"], action != event.action { return nil }
    if let devpath = event.properties["DEVPATH"], devpath != event.devpath { return nil }
    return event
}
