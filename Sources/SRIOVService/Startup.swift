import Foundation
import SRIOVCore
import SRIOVStore

/// What the daemon does before it serves mutations: finish or roll back what a crash interrupted, and
/// record the inventory it found.
public struct StartupRecovery: Sendable {
    let core: ServiceCore
    /// Whether to put VFs and settings back (reboot recovery), or only report.
    let restore: Bool

    public init(core: ServiceCore, restore: Bool = true) {
        self.core = core
        self.restore = restore
    }

    /// Closes every intent left open by a crash. A VF count change whose write reached the hardware is
    /// completed (its desired count recorded); one that did not is rolled back (the desired count stays).
    /// Each decision is an audit event with actor `reconciler`.
    public func run() async throws {
        let snapshot = core.inventory.snapshot
        let intents = try core.store.read { try $0.openIntents() }
        let caller = Caller.reconciler
        try await core.perform { tx in
            for intent in intents {
                var details: [String: JSONValue] = [
                    "intent": .int(Int(intent.id)), "kind": .string(intent.kind),
                    "payload": (try? JSONValue.parse(intent.payload)) ?? .null,
                ]
                var outcome = "rolled back"
                if intent.kind == "pf.vfs.set", let pf = PCIAddress(intent.target),
                    case .object(let payload)? = try? JSONValue.parse(intent.payload),
                    case .int(let wanted)? = payload["to"]
                {
                    let now = snapshot.pf(pf)?.pf.numVFs
                    details["hardware"] = now.map(JSONValue.int) ?? .null
                    if now == wanted {
                        try tx.setDesiredVFs(pf: pf, wanted)
                        outcome = "completed"
                    }
                }
                details["outcome"] = .string(outcome)
                try tx.completeIntent(intent.id)
                try tx.appendAudit(
                    caller.event("intent.recover", target: intent.target, outcome: .success, details: details))
            }
            try tx.recordInventory(snapshot.host, seenAt: Timestamp.now())
        }
    }
}
