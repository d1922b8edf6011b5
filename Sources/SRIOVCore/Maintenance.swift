/// A PF's maintenance state: whether it takes new allocations, and which of its VFs sriovd manages.
public struct PFMaintenance: Hashable, Sendable {
    public var pf: PCIAddress
    /// No new allocation lands on a cordoned PF.
    public var cordoned: Bool
    public var cordonedAt: String?
    /// The VF indexes sriovd manages; nil manages them all. VFs outside are `external`.
    public var managed: ClosedRange<Int>?

    public init(pf: PCIAddress, cordoned: Bool = false, cordonedAt: String? = nil, managed: ClosedRange<Int>? = nil) {
        self.pf = pf
        self.cordoned = cordoned
        self.cordonedAt = cordonedAt
        self.managed = managed
    }

    /// Whether sriovd owns the VF of this index.
    public func manages(vfIndex: Int) -> Bool { managed?.contains(vfIndex) ?? true }
}

/// Every PF's maintenance state, by address; a PF without an entry is not cordoned and wholly managed.
public struct MaintenanceMap: Hashable, Sendable {
    public var byPF: [PCIAddress: PFMaintenance]

    public init(_ entries: [PFMaintenance] = []) {
        byPF = Dictionary(entries.map { ($0.pf, $0) }, uniquingKeysWith: { _, last in last })
    }

    public subscript(pf: PCIAddress) -> PFMaintenance { byPF[pf] ?? PFMaintenance(pf: pf) }

    public func isCordoned(_ pf: PCIAddress) -> Bool { byPF[pf]?.cordoned ?? false }

    /// Whether another owner holds the VF of this index (outside the PF's managed range).
    public func isExternal(pf: PCIAddress, vfIndex: Int) -> Bool { !(byPF[pf]?.manages(vfIndex: vfIndex) ?? true) }

    public var cordonedPFs: Set<PCIAddress> { Set(byPF.values.filter(\.cordoned).map(\.pf)) }
}

/// A VF index range as the SR-IOV network operator writes it after a PF name: `0-3`, or `5` for one VF.
public enum VFRangeText {
    /// The range, or nil when the text is not `N` or `N-M` with N <= M (at most 4 digits each).
    public static func parse(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
            parts.allSatisfy({ !$0.isEmpty && $0.count <= 4 && $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return nil }
        let bounds = parts.compactMap { Int($0) }
        guard bounds.count == parts.count, bounds.first! <= bounds.last! else { return nil }
        return bounds.first!...bounds.last!
    }

    public static func text(_ range: ClosedRange<Int>) -> String { "\(range.lowerBound)-\(range.upperBound)" }
}

/// Where a move may land (`POST /allocations/{id}/move`).
public enum MoveDestination: Sendable, Hashable {
    /// A free VF of this PF (the allocation's own PF too: another VF of it).
    case pf(PCIAddress)
    /// A free VF of another PF matching the selector, placed by its rule (`spread` unless it names one).
    case selector(VFSelector)
}
