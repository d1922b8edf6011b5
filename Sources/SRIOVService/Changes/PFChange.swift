import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// One change to a PF or its VFs, in the steps that `ServiceCore.perform(_:opening:caller:)` runs in order.
///
/// The primitive owns the order and the bookkeeping: the PF lock; an intent committed before any hardware write,
/// naming what will be written and the state to return to; the writes, each audited; the completion, in one
/// transaction with the audit of every write; in-memory state changed only after that commit. A change only says
/// what each step is.
protocol PFChange: Sendable {
    /// What is read before the intent (under the PF lock, no writes): what to write and what to return to.
    associatedtype Plan: Sendable
    /// What the hardware step produced.
    associatedtype Output: Sendable
    /// The answer, once recorded.
    associatedtype Done: Sendable

    var kind: IntentKind { get }
    /// The PF whose lock and queue the change takes.
    var pf: PCIAddress { get }
    /// Every PF whose lock the change takes: `pf`, and for a change spanning two PFs (a move) the other one too.
    /// They are taken in address order, so two such changes never wait on each other crosswise.
    var pfs: [PCIAddress] { get }
    /// The intent's target: a PF, a VF or an allocation id.
    var target: String { get }
    /// The VF the change writes, kept out of the pool should an undo fail; nil for PF-wide changes.
    var vf: PCIAddress? { get }
    /// The audit action of the change (`pf.vfs.set`, `vf.update`, ...).
    var action: String { get }
    /// Who asked: the actor of every audit event of the change.
    var caller: Caller { get }

    /// Reads what the change needs, under the PF lock, before the intent. May refuse.
    func plan(_ core: ServiceCore) async throws(SRIOVError) -> Plan
    /// What the intent records: what will be written and the state to return to; nil when the plan needs no
    /// hardware write, so no intent and no write: the outcome is recorded at once (after the PF lock is let go).
    func payload(_ plan: Plan) -> JSONValue?
    /// Inside the intent's transaction: a refusal here is audited and nothing is written.
    func admit(_ tx: Transaction, _ plan: Plan) throws -> SRIOVError?
    /// The hardware writes, through the session (which keeps each for the audit).
    func write(_ session: HardwareSession, _ plan: Plan) async throws(HardwareFailure) -> Output
    /// Inside the completion's transaction: the records and the audit event of the outcome; `result` is nil when
    /// the plan needed no hardware write.
    func complete(_ tx: Transaction, _ plan: Plan, _ result: Result<Output, HardwareFailure>?) throws -> Done
    /// Puts the hardware back to the plan's return state; true when it reads back so.
    func undo(_ session: HardwareSession, _ plan: Plan) async -> Bool
    /// In-memory state, once the completion is committed (or the change was undone); nil as for `complete`.
    func settle(_ core: ServiceCore, _ plan: Plan, _ result: Result<Output, HardwareFailure>?)
}

extension PFChange {
    var pfs: [PCIAddress] { [pf] }

    func admit(_ tx: Transaction, _ plan: Plan) throws -> SRIOVError? { nil }
}

/// Where a change's intent comes from.
enum IntentOpening: Sendable {
    /// The primitive commits it under the PF lock.
    case begin
    /// Committed already, in the same transaction as the claim that chose the VF (an allocation's PF is known only
    /// once its VF is chosen). The primitive completes it.
    case open(Int64)
}
