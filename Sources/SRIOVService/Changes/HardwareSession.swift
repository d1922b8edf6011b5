import FoundationEssentials
import SRIOVCore
import SRIOVHardware
import Synchronization

/// The hardware side of one operation: runs its writes on the PF's queue, bounded, and keeps every write so that
/// the operation audits them in the transaction that records its completion.
///
/// A step that overruns its timeout answers at once; the writes it makes after that are audited on their own when
/// it ends, so no write goes unrecorded.
final class HardwareSession: Sendable {
    let core: ServiceCore
    let pf: PCIAddress
    let caller: Caller
    private let log = Mutex<[HardwareWrite]>([])

    init(core: ServiceCore, pf: PCIAddress, caller: Caller) {
        self.core = core
        self.pf = pf
        self.caller = caller
    }

    /// The writes made so far, handed over once.
    func takeWrites() -> [HardwareWrite] {
        log.withLock { writes in
            defer { writes = [] }
            return writes
        }
    }

    /// True when any write was accepted by the kernel: the hardware may differ from before.
    var changedHardware: Bool { log.withLock { $0.contains(where: \.succeeded) } }

    /// VF work (settings over rtnetlink, driver binding) on the PF's queue (or `queue`'s, for the other PF of a
    /// change spanning two), bounded by the VF step timeout. A `VFHardwareError` from the body becomes its domain
    /// error, with whether the VF may be left changed.
    @discardableResult
    func vf<T: Sendable>(
        _ address: PCIAddress, queue: PCIAddress? = nil,
        _ body: @escaping @Sendable (VFController, _ record: (HardwareWrite) -> Void) throws -> T
    ) async throws(HardwareFailure) -> T {
        let step = StepLog()
        let controller = core.vfs
        let caller = self.caller
        let core = self.core
        do {
            let value = try await core.queues.run(pf: queue ?? pf, timeout: core.vfStepTimeout) {
                defer {
                    let late = step.finish()
                    if !late.isEmpty { Task { await core.audit(writes: late, caller: caller) } }
                }
                return try body(controller) { step.append($0) }
            }
            append(step.handOver())
            return value
        } catch PFWriteQueues.Failure.timedOut {
            append(step.handOver())
            let error = SRIOVError.hardwareTimeout(
                queue ?? pf, "the VF step is still running; its writes are audited when it ends")
            throw HardwareFailure(error: error, leftChanged: true)
        } catch let error as VFHardwareError {
            append(step.handOver())
            throw HardwareFailure(error: error.domainError(vf: address), leftChanged: error.leavesVFChanged)
        } catch {
            append(step.handOver())
            let domain = error as? SRIOVError ?? .kernel(operation: "VF step on \(address)", errno: 0, name: "\(error)")
            throw HardwareFailure(error: domain, leftChanged: true)
        }
    }

    /// Puts every setting and the driver of the VF back to `state`; true when it reads back so.
    func restore(_ state: VFState, vf: VirtualFunction, pf: PhysicalFunction) async -> Bool {
        let timeout = core.writeTimeout
        do {
            try await self.vf(vf.address, queue: pf.address) { controller, record in
                try controller.restore(state, vf: vf, pf: pf, bindTimeout: timeout, onWrite: record)
            }
            return true
        } catch {
            core.logger.error(
                "could not put a VF back", metadata: ["pci.address": "\(vf.address)", "error": "\(error.error)"])
            return false
        }
    }

    /// One sysfs write of the PF (`sriov_numvfs`, `sriov_drivers_autoprobe`) on its queue, bounded by `timeout`.
    func sysfs(
        attribute: String, value: String, timeout: Duration? = nil,
        _ work: @escaping @Sendable (SRIOVWriter) throws -> Void
    ) async throws(HardwareWriteError) {
        let writer = core.writer
        let clock = ContinuousClock()
        let started = clock.now
        var failure: HardwareWriteError?
        do {
            try await core.queues.run(pf: pf, timeout: timeout ?? core.writeTimeout) {
                do { try work(writer) } catch let error as SysfsError { throw HardwareWriteError.kernel(error) }
            }
        } catch let error as HardwareWriteError {
            failure = error
        } catch {
            failure = .timedOut
        }
        append([
            HardwareWrite(
                kind: .sysfs, target: pf, operation: attribute, value: value, errno: failure?.errnoName,
                duration: clock.now - started)
        ])
        if let failure { throw failure }
    }

    private func append(_ writes: [HardwareWrite]) {
        guard !writes.isEmpty else { return }
        log.withLock { $0 += writes }
    }
}

/// The writes of one queued step: handed to the session when the caller is answered, or audited by the step itself
/// when it ends after its caller gave up waiting.
private final class StepLog: Sendable {
    private let state = Mutex<(writes: [HardwareWrite], handedOver: Bool)>(([], false))

    func append(_ write: HardwareWrite) { state.withLock { $0.writes.append(write) } }

    /// The writes so far; later ones stay for `finish`.
    func handOver() -> [HardwareWrite] {
        state.withLock { state in
            defer {
                state.writes = []
                state.handedOver = true
            }
            return state.writes
        }
    }

    /// At the step's end: the writes made after the caller was answered (none when it was answered after).
    func finish() -> [HardwareWrite] {
        state.withLock { state in state.handedOver ? state.writes : [] }
    }
}

extension HardwareWriteError {
    /// `ETIMEDOUT` or the kernel's errno name.
    var errnoName: String {
        switch self {
        case .kernel(let error): error.name
        case .timedOut: "ETIMEDOUT"
        }
    }
}

/// A hardware step's failure, with whether the VF may have been left changed.
struct HardwareFailure: Error, Sendable {
    var error: SRIOVError
    var leftChanged: Bool
}
