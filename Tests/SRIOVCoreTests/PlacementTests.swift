import SRIOVCore
import Testing

/// The placement rule, quotas and the capacity report as pure functions: what they decide from what they are given.
@Suite struct PlacementTests {
    static let pfA = PCIAddress("0000:3b:00.0")!
    static let pfB = PCIAddress("0000:5e:00.0")!
    static let pfC = PCIAddress("0000:af:00.0")!

    /// `count` free VFs of `pf` on `node`, from VF index `first`, as the inventory lists them.
    static func free(_ pf: PCIAddress, node: Int?, count: Int, first: Int = 0) -> [PlacementCandidate] {
        (first..<(first + count)).map { index in
            let vf = PCIAddress(
                domain: pf.domain, bus: pf.bus &+ 1, device: UInt8(index / 8), function: UInt8(index % 8))
            return PlacementCandidate(vf: vf, pf: pf, vfIndex: index, numaNode: node)
        }
    }

    static let threePFs = free(pfA, node: 0, count: 4) + free(pfB, node: 0, count: 4) + free(pfC, node: 1, count: 4)

    static func chosen(_ outcome: PlacementRule.Outcome) throws -> (PlacementCandidate, PlacementReason) {
        guard case .chosen(let candidate, let reason) = outcome else {
            Issue.record("expected a choice, got \(outcome)")
            throw Refused()
        }
        return (candidate, reason)
    }

    struct Refused: Error {}

    @Test func withoutPlacementTheFirstFreeVFInInventoryOrderIsChosen() throws {
        let (vf, reason) = try Self.chosen(
            PlacementRule.choose(free: Self.threePFs, held: [Self.pfB: 3], options: .init()))
        #expect(vf == Self.threePFs[0])
        #expect(reason.rule == "first-free")
        #expect(reason.avoidedPFs.isEmpty)
    }

    @Test func packFillsTheMostUsedPFAndSpreadTheLeastUsed() throws {
        let held = [Self.pfA: 1, Self.pfB: 3, Self.pfC: 0]
        let (packed, packReason) = try Self.chosen(
            PlacementRule.choose(free: Self.threePFs, held: held, options: .init(mode: .pack)))
        #expect(packed.pf == Self.pfB)
        #expect(packed.vfIndex == 0, "the lowest-index free VF of the chosen PF")
        #expect(packReason.rule == "pack")
        #expect(packReason.reason.contains("0000:5e:00.0 is the most used eligible PF (3 held)"))

        let (spread, spreadReason) = try Self.chosen(
            PlacementRule.choose(free: Self.threePFs, held: held, options: .init(mode: .spread)))
        #expect(spread.pf == Self.pfC)
        #expect(spreadReason.rule == "spread")
        #expect(spreadReason.numaNode == 1)
    }

    @Test func tiesGoToThePFThatComesFirst() throws {
        let (packed, _) = try Self.chosen(
            PlacementRule.choose(free: Self.threePFs, held: [:], options: .init(mode: .pack)))
        let (spread, _) = try Self.chosen(
            PlacementRule.choose(free: Self.threePFs, held: [:], options: .init(mode: .spread)))
        #expect(packed.pf == Self.pfA)
        #expect(spread.pf == Self.pfA)
    }

    /// Spreading one allocation at a time over three empty PFs visits each before any PF gets a second.
    @Test func spreadBalancesRepeatedAllocations() throws {
        var free = Self.threePFs
        var held: [PCIAddress: Int] = [:]
        var order: [PCIAddress] = []
        for _ in 0..<6 {
            let (vf, _) = try Self.chosen(PlacementRule.choose(free: free, held: held, options: .init(mode: .spread)))
            order.append(vf.pf)
            held[vf.pf, default: 0] += 1
            free.removeAll { $0 == vf }
        }
        #expect(order == [Self.pfA, Self.pfB, Self.pfC, Self.pfA, Self.pfB, Self.pfC])
    }

    @Test func preferredNUMANodeIsASoftRule() throws {
        let (onNode, reason) = try Self.chosen(
            PlacementRule.choose(free: Self.threePFs, held: [:], options: .init(preferNUMANode: 1)))
        #expect(onNode.pf == Self.pfC)
        #expect(reason.reason.contains("on preferred NUMA node 1"))

        let nodeZeroOnly = Self.free(Self.pfA, node: 0, count: 2)
        let (elsewhere, fallback) = try Self.chosen(
            PlacementRule.choose(free: nodeZeroOnly, held: [:], options: .init(preferNUMANode: 1)))
        #expect(elsewhere.pf == Self.pfA, "no VF on the preferred node: any other is taken")
        #expect(fallback.reason.contains("preferred NUMA node 1 had no free eligible VF"))
    }

    @Test func antiAffinityAvoidsPFsHoldingTheSameValue() throws {
        let bond = PlacementRule.LabelValue(label: "bond", value: "b1")
        let twoPFs = Self.free(Self.pfA, node: 0, count: 4) + Self.free(Self.pfB, node: 0, count: 4)
        let (vf, reason) = try Self.chosen(
            PlacementRule.choose(free: twoPFs, held: [:], options: .init(antiAffinity: bond), conflicting: [Self.pfA]))
        #expect(vf.pf == Self.pfB)
        #expect(reason.avoidedPFs == [Self.pfA])
        #expect(reason.reason.contains("avoided 0000:3b:00.0 holding bond=b1"))

        // Anti-affinity is a hard rule: it wins over pack, which would pick the busier PF.
        let (packed, _) = try Self.chosen(
            PlacementRule.choose(
                free: twoPFs, held: [Self.pfA: 3], options: .init(mode: .pack, antiAffinity: bond),
                conflicting: [Self.pfA]))
        #expect(packed.pf == Self.pfB)
    }

    @Test func antiAffinityWithOnePFIsRefusedNamingIt() {
        let bond = PlacementRule.LabelValue(label: "bond", value: "b1")
        let onePF = Self.free(Self.pfA, node: 0, count: 4)
        let outcome = PlacementRule.choose(
            free: onePF, held: [Self.pfA: 1], options: .init(antiAffinity: bond), conflicting: [Self.pfA])
        #expect(outcome == .antiAffinity(label: "bond", value: "b1", pfs: [Self.pfA]))
        // A PF without free VFs is no alternative, even when it holds no such label.
        #expect(PlacementRule.choose(free: [], held: [:], options: .init(antiAffinity: bond)) == .noneFree)
    }

    @Test func theLongestMatchingOwnerPrefixGoverns() {
        let quotas = [
            Quota(ownerPrefix: "k8s:", maxVFs: 100, updatedAt: "t"),
            Quota(ownerPrefix: "k8s:team-a/", maxVFs: 10, updatedAt: "t"),
            Quota(ownerPrefix: "k8s:team-a/batch", maxVFs: 2, updatedAt: "t"),
        ]
        #expect(Quota.governing("k8s:team-a/web-0", among: quotas)?.maxVFs == 10)
        #expect(Quota.governing("k8s:team-a/batch-7", among: quotas)?.maxVFs == 2)
        #expect(Quota.governing("k8s:team-b/web-0", among: quotas)?.maxVFs == 100)
        #expect(Quota.governing("vm:db-1", among: quotas) == nil)
        #expect(Quota.governing("k8s", among: quotas) == nil, "a prefix longer than the owner does not match")
        // Each owner counts toward the one quota that governs it: k8s: leaves team-a/ (and so batch) out.
        #expect(quotas[0].nestedPrefixes(among: quotas) == ["k8s:team-a/"])
        #expect(quotas[1].nestedPrefixes(among: quotas) == ["k8s:team-a/batch"])
        #expect(quotas[2].nestedPrefixes(among: quotas).isEmpty)
    }

    @Test func quotaLimitsInTotalAndPerNUMANode() {
        let quota = Quota(ownerPrefix: "vm:", maxVFs: 4, perNUMANode: [0: 1, 1: 3], updatedAt: "t")
        let use = QuotaUse(total: 3, byNUMANode: [0: 1, 1: 2])
        #expect(quota.totalRefusal(use) == nil)
        #expect(quota.fullNUMANodes(use) == [0])
        let full = QuotaUse(total: 4, byNUMANode: [0: 1, 1: 3])
        #expect(quota.totalRefusal(full) == QuotaRefusal(ownerPrefix: "vm:", limit: 4, used: 4, numaNode: nil))
        #expect(quota.fullNUMANodes(full) == [0, 1])
        let zero = Quota(ownerPrefix: "vm:", maxVFs: 0, updatedAt: "t")
        #expect(zero.totalRefusal(QuotaUse())?.limit == 0, "a quota of 0 refuses every VF")
    }

    @Test func capacityCountsEachPFAndGroupsThem() {
        func pf(_ address: PCIAddress, node: Int?, driver: String, device: String, total: Int, vfs: Int) -> PFSnapshot {
            let pf = PhysicalFunction(
                address: address, vendorID: "8086", deviceID: device, pciClass: "0x020000", driver: driver,
                interfaces: [], numaNode: node, totalVFs: total, numVFs: vfs, vfDeviceID: nil, vfOffset: nil,
                vfStride: nil, driversAutoprobe: nil, link: nil)
            let list = Self.free(address, node: node, count: vfs).map {
                VirtualFunction(
                    index: $0.vfIndex, address: $0.vf, pf: address, vendorID: "8086", deviceID: "154c", driver: "iavf",
                    interface: nil, numaNode: node, iommuGroup: nil)
            }
            return PFSnapshot(pf: pf, vfs: list)
        }
        let a = pf(Self.pfA, node: 0, driver: "i40e", device: "1572", total: 64, vfs: 4)
        let b = pf(Self.pfB, node: 0, driver: "ice", device: "159b", total: 128, vfs: 2)
        let c = pf(Self.pfC, node: 1, driver: "ice", device: "159b", total: 8, vfs: 0)
        let held: Set = [a.vfs[0].address, a.vfs[1].address, b.vfs[0].address]
        let report = CapacityReport(
            host: HostSnapshot(pfs: [a, b, c]), held: held, dirty: [a.vfs[2].address])

        #expect(report.host.totalVFs == 200)
        #expect(report.host.enabled == 6)
        #expect(report.host.held == 3)
        #expect(report.host.dirty == 1)
        #expect(report.host.free == 2)
        #expect(report.host.headroom == 194)
        #expect(report.host.reserved == 0 && report.host.cordoned == 0)
        #expect(report.pfs.map(\.counts.free) == [1, 1, 0])
        #expect(report.byNUMANode.map(\.key) == [0, 1])
        #expect(report.byNUMANode.map(\.counts.enabled) == [6, 0])
        #expect(report.byDriver.map(\.key) == ["i40e", "ice"])
        #expect(report.byDriver.map(\.counts.totalVFs) == [64, 136])
        #expect(report.byVendorDevice.map(\.key) == ["8086:1572", "8086:159b"])
    }
}
