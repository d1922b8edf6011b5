/// How a selector spreads allocations over PFs.
public enum PlacementMode: String, Hashable, Sendable, Codable, CaseIterable {
    /// Fill the most used eligible PF first, keeping other PFs empty (free for resizes).
    case pack
    /// Balance: the eligible PF with the fewest held VFs first.
    case spread
}

/// `anti_affinity: {"label": "bond"}`: allocations with the same value of that label go on different PFs.
public struct AntiAffinity: Hashable, Sendable, Codable {
    public var label: String

    public init(label: String) {
        self.label = label
    }
}

/// A free VF the placement rule may pick: where it is and on which NUMA node.
public struct PlacementCandidate: Hashable, Sendable {
    public var vf: PCIAddress
    public var pf: PCIAddress
    public var vfIndex: Int
    public var numaNode: Int?

    public init(vf: PCIAddress, pf: PCIAddress, vfIndex: Int, numaNode: Int?) {
        self.vf = vf
        self.pf = pf
        self.vfIndex = vfIndex
        self.numaNode = numaNode
    }
}

/// Why an allocation got its VF, kept with the allocation (`placement` in its JSON and audit details).
public struct PlacementReason: Hashable, Sendable, Codable {
    /// `first-free` (no placement asked: the lowest-index free VF in inventory order), `pack` or `spread`.
    public var rule: String
    /// One sentence for people.
    public var reason: String
    /// The chosen VF's NUMA node, when known.
    public var numaNode: Int?
    /// PFs left out because they hold an allocation with the same anti-affinity label value.
    public var avoidedPFs: [PCIAddress]

    public init(rule: String, reason: String, numaNode: Int?, avoidedPFs: [PCIAddress]) {
        self.rule = rule
        self.reason = reason
        self.numaNode = numaNode
        self.avoidedPFs = avoidedPFs
    }

    enum CodingKeys: String, CodingKey {
        case rule, reason
        case numaNode = "numa_node"
        case avoidedPFs = "avoided_pfs"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeAll([.rule: rule, .reason: reason, .numaNode: numaNode, .avoidedPFs: avoidedPFs])
    }
}

/// The placement rule: which free VF a new allocation gets. Pure: it sees only what it is given.
public enum PlacementRule {
    /// What the rule decided.
    public enum Outcome: Hashable, Sendable {
        case chosen(PlacementCandidate, PlacementReason)
        /// No free candidate at all.
        case noneFree
        /// Free VFs exist, but only on PFs that already hold the label value.
        case antiAffinity(label: String, value: String, pfs: [PCIAddress])
    }

    /// A label and the new allocation's value of it.
    public struct LabelValue: Hashable, Sendable {
        public var label: String
        public var value: String

        public init(label: String, value: String) {
            self.label = label
            self.value = value
        }
    }

    /// The options a selector gives.
    public struct Options: Hashable, Sendable {
        public var mode: PlacementMode?
        public var preferNUMANode: Int?
        public var antiAffinity: LabelValue?

        public init(mode: PlacementMode? = nil, preferNUMANode: Int? = nil, antiAffinity: LabelValue? = nil) {
            self.mode = mode
            self.preferNUMANode = preferNUMANode
            self.antiAffinity = antiAffinity
        }
    }

    /// Picks a VF among `free` (in inventory order: PFs by address, VFs by index).
    /// - Parameters:
    ///   - held: VFs held now, by PF (what pack and spread weigh).
    ///   - conflicting: PFs holding an allocation with the same anti-affinity label value.
    public static func choose(
        free: [PlacementCandidate], held: [PCIAddress: Int], options: Options, conflicting: Set<PCIAddress> = []
    ) -> Outcome {
        guard !free.isEmpty else { return .noneFree }
        var eligible = free
        var avoided: [PCIAddress] = []
        if let rule = options.antiAffinity {
            eligible = free.filter { !conflicting.contains($0.pf) }
            avoided = orderedPFs(free.filter { conflicting.contains($0.pf) })
            guard !eligible.isEmpty else { return .antiAffinity(label: rule.label, value: rule.value, pfs: avoided) }
        }
        var numaNote = ""
        if let preferred = options.preferNUMANode {
            let onNode = eligible.filter { $0.numaNode == preferred }
            if onNode.isEmpty {
                numaNote = "; preferred NUMA node \(preferred) had no free eligible VF"
            } else {
                eligible = onNode
                numaNote = " on preferred NUMA node \(preferred)"
            }
        }
        let affinityNote =
            options.antiAffinity.map { rule in
                avoided.isEmpty
                    ? "; no PF holds \(rule.label)=\(rule.value)"
                    : "; avoided \(avoided.map(\.description).joined(separator: ", ")) holding \(rule.label)=\(rule.value)"
            } ?? ""
        let pf: PCIAddress
        let rule: String
        let why: String
        switch options.mode {
        case nil:
            pf = eligible[0].pf
            rule = "first-free"
            why = "lowest-index free VF"
        case .pack?:
            // Most held first; ties go to the PF that comes first.
            // `max(by:)` keeps the first of equals.
            pf = orderedPFs(eligible).max { (held[$0] ?? 0) < (held[$1] ?? 0) }!
            rule = "pack"
            why = "pack: \(pf) is the most used eligible PF (\(held[pf] ?? 0) held)"
        case .spread?:
            // `min(by:)` keeps the first of equals.
            pf = orderedPFs(eligible).min { (held[$0] ?? 0) < (held[$1] ?? 0) }!
            rule = "spread"
            why = "spread: \(pf) is the least used eligible PF (\(held[pf] ?? 0) held)"
        }
        let chosen = eligible.first { $0.pf == pf }!
        let reason = PlacementReason(
            rule: rule, reason: why + numaNote + affinityNote, numaNode: chosen.numaNode, avoidedPFs: avoided)
        return .chosen(chosen, reason)
    }

    /// The PFs of the candidates, each once, in the order they first appear.
    private static func orderedPFs(_ candidates: [PlacementCandidate]) -> [PCIAddress] {
        var seen = Set<PCIAddress>()
        return candidates.compactMap { seen.insert($0.pf).inserted ? $0.pf : nil }
    }
}
