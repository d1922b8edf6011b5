import Dispatch
import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import Synchronization

/// VF work (settings over rtnetlink, driver binding) on the PF's queue, bounded, with every write audited.
extension ServiceCore {
    /// How long one composite VF step (several settings and possibly a driver rebind) may take.
    var vfStepTimeout: Duration { writeTimeout * 3 }

    /// Runs `body` on the PF's hardware queue. Every write it reports through `record` becomes an audit event
    /// when the work finishes, even if the caller was already answered because the work overran its timeout.
    func vfWork<T: Sendable>(
        pf: PCIAddress, caller: Caller,
        _ body: @escaping @Sendable (VFController, _ record: (HardwareWrite) -> Void) throws -> T
    ) async throws -> T {
        let controller = vfs
        let writes = Mutex<[HardwareWrite]>([])
        do {
            return try await queues.run(pf: pf, timeout: vfStepTimeout) {
                defer {
                    let done = writes.withLock { $0 }
                    if !done.isEmpty { Task { await self.audit(writes: done, caller: caller) } }
                }
                return try body(controller) { write in writes.withLock { $0.append(write) } }
            }
        } catch PFWriteQueues.Failure.timedOut {
            throw SRIOVError.hardwareTimeout(pf, "the VF step is still running; its writes are audited when it ends")
        }
    }

    /// Applies `config` to the VF on its PF's queue (all of it, or the VF is rolled back); a driver's refusal
    /// becomes the domain error that names the setting, the driver and the errno.
    func apply(_ config: VFConfig, to vf: VirtualFunction, pf: PhysicalFunction, caller: Caller)
        async throws(SRIOVError)
    {
        let timeout = writeTimeout
        try await vfStep(pf: pf.address, vf: vf.address, caller: caller) { controller, record in
            try controller.apply(config, to: vf, pf: pf, bindTimeout: timeout, onWrite: record)
        }
    }

    /// Restores every setting and the driver of the VF on its PF's queue.
    func restore(_ original: VFState, vf: VirtualFunction, pf: PhysicalFunction, caller: Caller)
        async throws(SRIOVError)
    {
        let timeout = writeTimeout
        try await vfStep(pf: pf.address, vf: vf.address, caller: caller) { controller, record in
            try controller.restore(original, vf: vf, pf: pf, bindTimeout: timeout, onWrite: record)
        }
    }

    /// A VF step whose hardware errors become domain errors.
    private func vfStep(
        pf: PCIAddress, vf: PCIAddress, caller: Caller,
        _ body: @escaping @Sendable (VFController, (HardwareWrite) -> Void) throws -> Void
    ) async throws(SRIOVError) {
        do {
            try await vfWork(pf: pf, caller: caller) { controller, record in
                do {
                    try body(controller, record)
                } catch let error as VFHardwareError {
                    throw error.domainError(vf: vf)
                }
            }
        } catch let error as SRIOVError {
            throw error
        } catch {
            throw .kernel(operation: "VF step on \(vf)", errno: 0, name: "\(error)")
        }
    }

    /// One audit event per hardware write, with its errno and duration.
    func audit(writes: [HardwareWrite], caller: Caller) async {
        for write in writes { Metrics.shared.recordHardwareWrite(errnoName: write.errno) }
        let events = writes.map { write in
            caller.event(
                "hw.\(write.kind.rawValue).write", target: write.target.description,
                outcome: write.succeeded ? .success : .failure, error: write.errno,
                details: [
                    "operation": .string(write.operation), "value": .string(write.value),
                    "errno": write.errno.map(JSONValue.string) ?? .null,
                    "duration_ms": .number(write.duration.milliseconds),
                ])
        }
        do {
            _ = try await perform { tx in for event in events { try tx.appendAudit(event) } }
        } catch {
            logger.error("audit of hardware writes failed", metadata: ["error": "\(error)"])
        }
    }

    /// Reads a VF's settings as the kernel reports them, on the PF's queue (so never mid-change).
    func vfState(_ vf: VirtualFunction, pf: PhysicalFunction, caller: Caller) async throws -> VFState {
        try await vfWork(pf: pf.address, caller: caller) { controller, _ in
            do {
                return try controller.state(of: vf, pf: pf)
            } catch let error as VFHardwareError {
                throw error.domainError(vf: vf.address)
            }
        }
    }
}

extension Duration {
    /// For `DispatchQueue.asyncAfter`.
    var dispatchInterval: DispatchTimeInterval {
        .nanoseconds(Int(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000))
    }

    /// Milliseconds with microsecond precision, for audit details.
    var milliseconds: Double {
        let micros = components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
        return Double(micros) / 1000
    }
}

extension VFState {
    /// What a VF looks like when the kernel has just created it: the state to restore when no original was
    /// captured (a crash between allocation and capture).
    static func factoryDefault(driver: String?) -> VFState {
        VFState(
            mac: VFState.zeroMAC, vlan: 0, qos: 0, vlanProto: .dot1Q, spoofCheck: true, trust: false,
            linkState: .auto, minTxRate: 0, maxTxRate: 0, driver: driver)
    }

    var json: String { String(decoding: JSONBody.encode(self), as: UTF8.self) }

    static func decode(_ json: String) -> VFState? {
        try? JSONDecoder().decode(VFState.self, from: Data(json.utf8))
    }
}
