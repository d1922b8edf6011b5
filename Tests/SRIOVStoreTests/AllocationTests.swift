import Foundation
import SRIOVCore
import Testing

@testable import SRIOVStore

@Suite struct AllocationTests {
    let directory = TemporaryDirectory()

    @Test func roundTripsEveryField() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        let config = VFConfig(mac: "02:00:00:00:00:01", vlan: 100, qos: 3, spoofCheck: true, driver: .vfioPCI)
        let allocation = Fixtures.allocation(
            vfIndex: 2, owner: "vm-7", labels: ["pod": "a/b", "zone": "é"], config: config)
        try await store.write { try $0.insertAllocation(allocation) }
        #expect(try store.read { try $0.allocation(id: allocation.id) } == allocation)
        #expect(try store.read { try $0.holdingAllocation(vf: allocation.vf) } == allocation)
        #expect(try store.read { try $0.allocation(id: "missing") } == nil)

        try await store.write { try $0.updateAllocationConfig(id: allocation.id, config: nil) }
        #expect(try store.read { try $0.allocation(id: allocation.id)?.config } == nil)
        await #expect(throws: StoreError.allocationNotFound("missing")) {
            try await store.write { try $0.updateAllocationConfig(id: "missing", config: config) }
        }
    }

    @Test func aSecondHoldingAllocationOfTheSameVFIsRefused() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        let first = try await store.allocate(vfIndex: 0)
        #expect(first.generation == 1)
        let vf = first.vf
        await #expect(throws: StoreError.vfAlreadyHeld(vf)) {
            try await store.write { tx in
                let generation = try tx.nextGeneration(vf: vf)
                try tx.insertAllocation(Fixtures.allocation(vfIndex: 0, owner: "vm-2", generation: generation))
            }
        }
        // Every holding state guards the VF, not only `active`.
        for state in AllocationState.allCases where state.holdsVF {
            try await store.write { try $0.updateAllocation(id: first.id, state: state, releasedAt: nil) }
            await #expect(throws: StoreError.vfAlreadyHeld(vf)) {
                try await store.write { tx in
                    let generation = try tx.nextGeneration(vf: vf)
                    try tx.insertAllocation(Fixtures.allocation(vfIndex: 0, owner: "vm-2", generation: generation))
                }
            }
        }
        #expect(try store.read { try $0.heldVFs() } == [vf])
        #expect(try store.read { try $0.holdingAllocations(pf: Fixtures.pf).map(\.id) } == [first.id])
    }

    @Test func releasingFreesTheVFAndTheGenerationGrows() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        let first = try await store.allocate(vfIndex: 1)
        try await store.write { try $0.updateAllocation(id: first.id, state: .released, releasedAt: Timestamp.now()) }
        #expect(try store.read { try $0.heldVFs() }.isEmpty)
        #expect(try store.read { try $0.holdingAllocation(vf: first.vf) } == nil)

        let second = try await store.allocate(vfIndex: 1, owner: "vm-2")
        #expect(second.generation == 2)
        #expect(try store.read { try $0.holdingAllocation(vf: first.vf)?.id } == second.id)
        #expect(try store.read { try $0.allocation(id: first.id)?.state } == .released)

        // Reviving the released allocation while another holds the VF trips the same guard.
        await #expect(throws: StoreError.vfAlreadyHeld(first.vf)) {
            try await store.write { try $0.updateAllocation(id: first.id, state: .active, releasedAt: nil) }
        }
        // A generation that does not grow is refused by the schema, whatever the caller does.
        try await store.write { try $0.updateAllocation(id: second.id, state: .released, releasedAt: Timestamp.now()) }
        await #expect(throws: StoreError.self) {
            try await store.write { try $0.insertAllocation(Fixtures.allocation(vfIndex: 1, generation: 2)) }
        }
        // Generations survive a restart.
        store.close()
        let reopened = try Store(path: directory.file("sriovd.db"))
        defer { reopened.close() }
        #expect(try await reopened.allocate(vfIndex: 1).generation == 3)
    }

    @Test func releasedNeedsAReleaseTimeAndUnknownIDsAreReported() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        let allocation = try await store.allocate(vfIndex: 0)
        await #expect(throws: StoreError.self) {
            try await store.write { try $0.updateAllocation(id: allocation.id, state: .released, releasedAt: nil) }
        }
        await #expect(throws: StoreError.allocationNotFound("nope")) {
            try await store.write { try $0.updateAllocation(id: "nope", state: .dirty, releasedAt: nil) }
        }
    }

    @Test func pagesThroughAllocationsWithFilters() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        var created: [Allocation] = []
        for index in 0..<25 {
            let pf = index % 5 == 0 ? Fixtures.otherPF : Fixtures.pf
            created.append(try await store.allocate(vfIndex: index, owner: index.isMultiple(of: 2) ? "a" : "b", pf: pf))
        }
        for allocation in created.prefix(6) {
            try await store.write {
                try $0.updateAllocation(id: allocation.id, state: .released, releasedAt: Timestamp.now())
            }
        }

        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try store.read { try $0.allocations(AllocationFilter(cursor: cursor, limit: 10)) }
            seen += page.items.map(\.id)
            cursor = page.next
            pages += 1
        } while cursor != nil
        #expect(pages == 3)
        #expect(seen == created.map(\.id))

        let exact = try store.read { try $0.allocations(AllocationFilter(limit: 25)) }
        #expect(exact.items.count == 25 && exact.next == nil)

        let owned = try store.read { try $0.allocations(AllocationFilter(owner: "a", limit: 500)) }
        #expect(owned.items.map(\.id) == created.enumerated().filter { $0.offset.isMultiple(of: 2) }.map(\.element.id))
        let released = try store.read { try $0.allocations(AllocationFilter(state: .released)) }
        #expect(released.items.map(\.id) == created.prefix(6).map(\.id))
        let active = try store.read {
            try $0.allocations(AllocationFilter(state: .active, owner: "b", pf: Fixtures.pf))
        }
        #expect(
            active.items.map(\.id)
                == created.enumerated().filter { $0.offset >= 6 && $0.offset % 2 == 1 && $0.offset % 5 != 0 }
                .map(\.element.id))
        let clamped = try store.read { try $0.allocations(AllocationFilter(limit: 10_000)) }
        #expect(clamped.items.count == 25)

        #expect(throws: StoreError.invalidCursor("x1")) {
            try store.read { try $0.allocations(AllocationFilter(cursor: "x1")) }
        }
    }

    @Test func inventoryDesiredCountsIntentsAndOriginalState() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        await #expect(throws: StoreError.unknownPF(Fixtures.pf)) {
            try await store.write { try $0.setDesiredVFs(pf: Fixtures.pf, 4) }
        }
        try await store.write { try $0.recordInventory(Fixtures.host(vfCount: 4), seenAt: "2026-11-25T09:00:00.000Z") }
        try await store.write { try $0.recordInventory(Fixtures.host(vfCount: 2), seenAt: "2026-11-25T10:00:00.000Z") }
        try await store.write { try $0.setDesiredVFs(pf: Fixtures.pf, 4) }
        let pfs = try store.read { try $0.storedPFs() }
        #expect(pfs.map(\.address) == [Fixtures.pf, Fixtures.otherPF])
        #expect(pfs[0].firstSeen == "2026-11-25T09:00:00.000Z" && pfs[0].lastSeen == "2026-11-25T10:00:00.000Z")
        #expect(pfs[0].vendorID == "0x8086" && pfs[0].desiredVFs == 4 && pfs[1].desiredVFs == nil)
        #expect(try store.read { try $0.desiredVFs(pf: Fixtures.pf) } == 4)
        try await store.write { try $0.setDesiredVFs(pf: Fixtures.pf, nil) }
        #expect(try store.read { try $0.desiredVFs(pf: Fixtures.pf) } == nil)

        let vfRows = try withRawDatabase(directory.file("sriovd.db")) { database in
            try database.query("SELECT address, last_seen FROM vfs ORDER BY address") { [$0.text(0), $0.text(1)] }
        }
        #expect(vfRows.count == 4)  // vanished VFs stay
        #expect(vfRows.filter { $0[1] == "2026-11-25T10:00:00.000Z" }.count == 2)

        let first = try await store.write {
            try $0.beginIntent(kind: .vfCount, target: Fixtures.pf.description, payload: #"{"to":8}"#)
        }
        let second = try await store.write {
            try $0.beginIntent(kind: .vfCount, target: Fixtures.otherPF.description, payload: "{}")
        }
        #expect(try store.read { try $0.openIntents().map(\.id) } == [first, second])
        try await store.write { try $0.completeIntent(first) }
        try await store.write { try $0.completeIntent(second, outcome: .rolledBack) }
        #expect(try store.read { try $0.openIntents() }.isEmpty)
        let closed = try await store.write { try $0.intent(id: second) }
        #expect(closed?.outcome == .rolledBack && closed?.completedAt != nil)
        await #expect(throws: StoreError.self) { try await store.write { try $0.completeIntent(first) } }

        let vf = Fixtures.vf(0)
        #expect(try await store.write { try $0.saveOriginalState(vf: vf, json: #"{"mac":"a"}"#) })
        #expect(try await store.write { try $0.saveOriginalState(vf: vf, json: #"{"mac":"b"}"#) } == false)
        #expect(try store.read { try $0.originalState(vf: vf) } == #"{"mac":"a"}"#)
        try await store.write { try $0.clearOriginalState(vf: vf) }
        #expect(try store.read { try $0.originalState(vf: vf) } == nil)
    }
}
