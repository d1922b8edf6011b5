import Dispatch
import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware
import Synchronization

extension ServiceCore {
    /// How long one composite VF step (several settings and possibly a driver rebind) may take.
    var vfStepTimeout: Duration { writeTimeout * 3 }

    /// A VF's settings and driver as the kernel reports them now. A read: it does not queue behind the PF's writes
    /// (callers that must not see a change half-done hold the PF lock).
    func readState(of vf: VirtualFunction, pf: PhysicalFunction) throws(SRIOVError) -> VFState {
        do { return try vfs.state(of: vf, pf: pf) } catch { throw error.domainError(vf: vf.address) }
    }

    /// One audit event per hardware write, with its errno and duration, in a transaction of their own: for the
    /// writes of a step that ended after its caller was answered.
    func audit(writes: [HardwareWrite], caller: Caller) async {
        let events = writes.map { $0.auditEvent(caller: caller) }
        do {
            _ = try await perform { tx in for event in events { try tx.appendAudit(event) } }
            Metrics.shared.recordHardwareWrites(writes)
        } catch {
            logger.error("audit of hardware writes failed", metadata: ["error": "\(error)"])
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

    /// For audit details and intent payloads.
    var jsonValue: JSONValue { (try? JSONValue.parse(json)) ?? .null }

    static func decode(_ json: String) -> VFState? {
        try? JSONDecoder().decode(VFState.self, from: Data(json.utf8))
    }
}

extension VFConfig {
    /// For audit details and intent payloads.
    var jsonValue: JSONValue { (try? JSONValue.parse(String(decoding: JSONBody.encode(self), as: UTF8.self))) ?? .null }
}
