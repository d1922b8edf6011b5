import Foundation
import SRIOVCore
import Testing

@testable import SRIOVStore

/// A fresh temporary folder, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-store-" + UUID().uuidString)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        path = url.path
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A path inside the folder.
    func file(_ name: String) -> String { path + "/" + name }

    /// Names and contents of every file in the folder.
    func snapshot() throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: path) {
            result[name] = try Data(contentsOf: URL(fileURLWithPath: file(name)))
        }
        return result
    }
}

/// A test-only failure thrown from write bodies.
struct BodyFailure: Error, Equatable {
    let number: Int
}

enum Fixtures {
    static let pf = PCIAddress("0000:3b:00.0")!
    static let otherPF = PCIAddress("0000:5e:00.0")!

    /// The VF at `index` of `pf` (addresses 0000:3b:02.0 upwards, as a stride-1 PF would have).
    static func vf(_ index: Int, of pf: PCIAddress = pf) -> PCIAddress {
        pf.advanced(byRoutingIDs: 16 + index)!
    }

    static func allocation(
        id: String = UUID().uuidString.lowercased(), vfIndex: Int = 0, pf: PCIAddress = pf, owner: String = "vm-1",
        state: AllocationState = .active, generation: Int = 1, labels: [String: String] = [:],
        config: VFConfig? = nil
    ) -> Allocation {
        Allocation(
            id: id, vf: vf(vfIndex, of: pf), pf: pf, vfIndex: vfIndex, owner: owner, labels: labels, state: state,
            createdAt: Timestamp.now(), releasedAt: state == .released ? Timestamp.now() : nil, config: config,
            generation: generation)
    }

    static func event(
        action: String = "allocation.create", target: String = "0000:3b:02.0", actor: String = "test",
        at: String = Timestamp.now()
    ) -> AuditEvent {
        AuditEvent(at: at, actor: actor, action: action, target: target, outcome: .success, details: #"{"k":1}"#)
    }

    static func host(vfCount: Int = 4) -> HostSnapshot {
        HostSnapshot(pfs: [pfSnapshot(pf, vfCount: vfCount), pfSnapshot(otherPF, vfCount: 0)])
    }

    static func pfSnapshot(_ address: PCIAddress, vfCount: Int) -> PFSnapshot {
        let pf = PhysicalFunction(
            address: address, vendorID: "0x8086", deviceID: "0x1593", pciClass: "0x020000", driver: "ice",
            interfaces: ["ens1f0"], numaNode: 0, totalVFs: 64, numVFs: vfCount, vfDeviceID: "0x1889", vfOffset: 16,
            vfStride: 1, driversAutoprobe: true, link: nil)
        let vfs = (0..<vfCount).map { index in
            VirtualFunction(
                index: index, address: vf(index, of: address), pf: address, vendorID: "0x8086", deviceID: "0x1889",
                driver: "iavf", interface: nil, numaNode: 0, iommuGroup: nil)
        }
        return PFSnapshot(pf: pf, vfs: vfs)
    }
}

extension Store {
    /// Inserts an allocation with the VF's next generation and returns it as stored.
    func allocate(vfIndex: Int, owner: String = "vm-1", pf: PCIAddress = Fixtures.pf) async throws -> Allocation {
        try await write { tx in
            let vf = Fixtures.vf(vfIndex, of: pf)
            let generation = try tx.nextGeneration(vf: vf)
            let allocation = Fixtures.allocation(vfIndex: vfIndex, pf: pf, owner: owner, generation: generation)
            try tx.insertAllocation(allocation)
            return allocation
        }
    }
}

/// Runs raw SQL on a separate connection (the test's view of the file).
func withRawDatabase<T>(_ path: String, _ body: (Database) throws -> T) throws -> T {
    let database = try Database(path: path, flags: openReadWriteCreate)
    defer { database.close() }
    return try body(database)
}

/// `SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE` without importing CSQLite into the tests.
let openReadWriteCreate: Int32 = 0x0000_0002 | 0x0000_0004

/// Polls `condition` every millisecond until it holds; throws, naming `what`, when `timeout` passes first.
func waitUntil(timeout: Duration = .seconds(5), _ what: String, _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: what, timeout: timeout) }
        try await Task.sleep(for: .milliseconds(1))
    }
}

struct WaitTimedOut: Error, CustomStringConvertible {
    var what: String
    var timeout: Duration
    var description: String { "waited \(timeout) in vain until \(what)" }
}
