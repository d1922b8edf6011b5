import Foundation
import Netlink
import SRIOVCore
import Synchronization
import Testing

@testable import HostSimulator
@testable import SRIOVHardware

/// A simulated host with the default PFs plus an igb PF shaped like the lab's (0000:02:00.0, eth0, 4 VFs), with a
/// `VFController` over it and a record of every hardware write.
final class VFFixture: Sendable {
    let folder: TemporaryFolder
    let host: HardwareHost
    let controller: VFController
    private let recorded = Mutex<[HardwareWrite]>([])

    static let igbProfile = SimulatedHost.igb82576Profile

    init() throws {
        folder = try TemporaryFolder()
        try SimulatedHost.ensure(at: folder.url, profiles: SimulatedHost.defaultProfiles + [Self.igbProfile])
        host = HardwareHost.simulated(at: folder.url)
        controller = VFController(host: host)
    }

    deinit { folder.remove() }

    var writer: SRIOVWriter { SRIOVWriter(sysfs: host.sysfs) }

    /// The PF and its VF number `index`, freshly scanned.
    func vf(_ pf: PCIAddress, _ index: Int = 0) throws -> (vf: VirtualFunction, pf: PhysicalFunction) {
        let snapshot = try #require(HostScanner(sysfs: host.sysfs).scan(pf: pf))
        let vf = try #require(snapshot.vfs.first { $0.index == index })
        return (vf, snapshot.pf)
    }

    func state(_ pf: PCIAddress, _ index: Int = 0) throws -> VFState {
        let (vf, pf) = try vf(pf, index)
        return try controller.state(of: vf, pf: pf)
    }

    /// Records a write; pass as `onWrite`.
    func record(_ write: HardwareWrite) { recorded.withLock { $0.append(write) } }

    var writes: [HardwareWrite] { recorded.withLock { $0 } }

    func clearWrites() { recorded.withLock { $0 = [] } }

    var operations: [String] { writes.map(\.operation) }
}

extension Address {
    static let igb = PCIAddress("0000:02:00.0")!
}

/// Runs `body` expecting a `VFHardwareError` and returns it.
func expectVFError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(VFHardwareError) -> Void
) -> VFHardwareError? {
    do {
        try body()
        Issue.record("expected a VFHardwareError, the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}
