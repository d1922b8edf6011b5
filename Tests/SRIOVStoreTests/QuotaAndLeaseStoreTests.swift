import Foundation
import SRIOVCore
import Testing

@testable import SRIOVStore

/// Migration 0005 in SQLite: leases and placement kept with allocations, quotas, and the queries placement and
/// quotas ask in the allocation's transaction.
@Suite struct QuotaAndLeaseStoreTests {
    let directory = TemporaryDirectory()

    @Test func leaseAndPlacementRoundTripAndExpiryIsFoundByTime() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        var leasedDraft = Fixtures.allocation(vfIndex: 0, owner: "vm-l")
        leasedDraft.leaseSeconds = 30
        leasedDraft.expiresAt = "2026-01-01T00:00:30.000Z"
        leasedDraft.placement = PlacementReason(
            rule: "spread", reason: "spread: least used", numaNode: 1, avoidedPFs: [Fixtures.otherPF])
        var laterDraft = Fixtures.allocation(vfIndex: 1, owner: "vm-m")
        laterDraft.leaseSeconds = 60
        laterDraft.expiresAt = "2026-01-01T00:01:00.000Z"
        let plain = Fixtures.allocation(vfIndex: 2, owner: "vm-p")
        let (leased, later) = (leasedDraft, laterDraft)
        try await store.write { tx in
            for allocation in [leased, later, plain] { try tx.insertAllocation(allocation) }
        }
        #expect(try store.read { try $0.allocation(id: leased.id) } == leased)
        #expect(try store.read { try $0.allocation(id: plain.id) } == plain)
        #expect(try store.read { try $0.expiredLeases(now: "2026-01-01T00:00:29.999Z") }.isEmpty)
        #expect(try store.read { try $0.expiredLeases(now: "2026-01-01T00:00:30.000Z") } == [leased.id])
        #expect(try store.read { try $0.expiredLeases(now: "2026-01-02T00:00:00.000Z") } == [leased.id, later.id])

        try await store.write {
            try $0.renewLease(id: leased.id, leaseSeconds: 90, expiresAt: "2026-01-01T00:02:00.000Z")
        }
        #expect(try store.read { try $0.expiredLeases(now: "2026-01-01T00:01:30.000Z") } == [later.id])
        // A released allocation's lease is over: it is never found again.
        try await store.write { try $0.updateAllocation(id: later.id, state: .released, releasedAt: Timestamp.now()) }
        #expect(try store.read { try $0.expiredLeases(now: "2027-01-01T00:00:00.000Z") } == [leased.id])
        await #expect(throws: StoreError.allocationNotFound("missing")) {
            try await store.write { try $0.renewLease(id: "missing", leaseSeconds: 1, expiresAt: "x") }
        }
    }

    @Test func quotasAreSetReplacedAndRemoved() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        try await store.write { tx in
            try tx.putQuota(Quota(ownerPrefix: "k8s:", maxVFs: 10, perNUMANode: [0: 4, 1: 6], updatedAt: "t1"))
            try tx.putQuota(Quota(ownerPrefix: "vm:", maxVFs: 3, updatedAt: "t1"))
            try tx.putQuota(Quota(ownerPrefix: "k8s:", maxVFs: 12, perNUMANode: [1: 2], updatedAt: "t2"))
        }
        let quotas = try store.read { try $0.quotas() }
        #expect(
            quotas == [
                Quota(ownerPrefix: "k8s:", maxVFs: 12, perNUMANode: [1: 2], updatedAt: "t2"),
                Quota(ownerPrefix: "vm:", maxVFs: 3, updatedAt: "t1"),
            ])
        #expect(try await store.write { try $0.deleteQuota(ownerPrefix: "vm:") })
        #expect(try await store.write { try $0.deleteQuota(ownerPrefix: "vm:") } == false)
        #expect(try store.read { try $0.quotas() }.map(\.ownerPrefix) == ["k8s:"])
    }

    /// The owner range counts exactly the owners that start with the prefix, whatever characters it holds (LIKE
    /// wildcards, multi-byte text), and only allocations that hold their VF.
    @Test func heldByPFCountsExactlyTheOwnersUnderAPrefix() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        let owners = ["t%_:a", "t%_:b", "t%_", "t%x:a", "t%_:é", "t%_;z", "u:a"]
        try await store.write { tx in
            for (index, owner) in owners.enumerated() {
                let pf = index % 2 == 0 ? Fixtures.pf : Fixtures.otherPF
                try tx.insertAllocation(Fixtures.allocation(vfIndex: index, pf: pf, owner: owner))
            }
            try tx.insertAllocation(
                Fixtures.allocation(vfIndex: 20, owner: "t%_:released", state: .released))
            try tx.insertAllocation(Fixtures.allocation(vfIndex: 21, owner: "t%_:dirty", state: .dirty))
        }
        let held = try store.read { try $0.heldByPF(ownerPrefix: "t%_:") }
        // t%_:a (0, pf), t%_:b (1, other), t%_:é (4, pf), t%_:dirty (pf); not t%_, t%x:a, t%_;z, u:a, the released.
        #expect(held == [Fixtures.pf: 3, Fixtures.otherPF: 1])
        #expect(try store.read { try $0.heldByPF(ownerPrefix: "nobody") }.isEmpty)
    }

    @Test func pfsHoldingALabelValue() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        try await store.write { tx in
            try tx.insertAllocation(Fixtures.allocation(vfIndex: 0, labels: ["bond": "b1", "app": "x"]))
            try tx.insertAllocation(Fixtures.allocation(vfIndex: 0, pf: Fixtures.otherPF, labels: ["bond": "b2"]))
            try tx.insertAllocation(
                Fixtures.allocation(vfIndex: 1, pf: Fixtures.otherPF, state: .released, labels: ["bond": "b1"]))
        }
        #expect(try store.read { try $0.pfsHoldingLabel("bond", value: "b1") } == [Fixtures.pf])
        #expect(try store.read { try $0.pfsHoldingLabel("bond", value: "b2") } == [Fixtures.otherPF])
        #expect(try store.read { try $0.pfsHoldingLabel("app", value: "b1") }.isEmpty)
    }
}
