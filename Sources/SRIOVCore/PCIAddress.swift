/// A PCI function address in the kernel's canonical form `DDDD:BB:DD.F` (domain, bus, device, function).
///
/// The initialiser is the only way to make one, and it accepts nothing but the strict form, so a value of
/// this type is always safe to use as a single sysfs path component.
public struct PCIAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let domain: UInt16
    public let bus: UInt8
    public let device: UInt8
    public let function: UInt8

    /// Parses `DDDD:BB:DD.F` in hex. Upper-case digits are accepted and normalised to lower case;
    /// anything else (missing domain, extra characters, device above 0x1f, function above 7) is rejected.
    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count == 12, bytes[4] == UInt8(ascii: ":"), bytes[7] == UInt8(ascii: ":"),
            bytes[10] == UInt8(ascii: ".")
        else { return nil }
        guard let domain = Self.hex(bytes[0..<4]), let bus = Self.hex(bytes[5..<7]),
            let device = Self.hex(bytes[8..<10]), let function = Self.hex(bytes[11..<12])
        else { return nil }
        guard device <= 0x1f, function <= 7 else { return nil }
        self.domain = UInt16(domain)
        self.bus = UInt8(bus)
        self.device = UInt8(device)
        self.function = UInt8(function)
    }

    public init(domain: UInt16, bus: UInt8, device: UInt8, function: UInt8) {
        precondition(device <= 0x1f && function <= 7, "PCI device or function out of range")
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// The address `offset + stride * index` routing IDs past `self`, as the kernel numbers a PF's VFs.
    public func advanced(byRoutingIDs delta: Int) -> PCIAddress? {
        let routingID = Int(bus) << 8 | Int(device) << 3 | Int(function)
        let next = routingID + delta
        guard next >= 0, next <= 0xffff else { return nil }
        return PCIAddress(
            domain: domain, bus: UInt8(next >> 8), device: UInt8((next >> 3) & 0x1f), function: UInt8(next & 7))
    }

    public var description: String {
        let parts: [String] = [paddedHex(Int(domain), width: 4), ":", paddedHex(Int(bus), width: 2), ":"]
        return parts.joined() + paddedHex(Int(device), width: 2) + "." + String(function)
    }

    public static func < (lhs: PCIAddress, rhs: PCIAddress) -> Bool {
        (lhs.domain, lhs.bus, lhs.device, lhs.function) < (rhs.domain, rhs.bus, rhs.device, rhs.function)
    }

    private static func hex(_ digits: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for byte in digits {
            let digit: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(byte - UInt8(ascii: "A")) + 10
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }
}

private func paddedHex(_ value: Int, width: Int) -> String {
    value.zeroPadded(toWidth: width, radix: 16)
}

extension PCIAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = PCIAddress(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not a PCI address of the form DDDD:BB:DD.F")
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
