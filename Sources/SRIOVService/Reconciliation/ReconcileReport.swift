import FoundationEssentials
import SRIOVCore
import Synchronization

/// What a reconcile run found and did.
public struct ReconcileReport: Sendable, Encodable {
    /// How one action of a run ended.
    public enum Outcome: String, Sendable, Encodable, CaseIterable {
        /// Carried out.
        case done
        /// What a dry run would do.
        case planned
        /// Found and shown: nothing to do, or nothing allowed (restore off, VFs in use).
        case reported
        /// Carried out in part (the kernel enabled fewer VFs than asked).
        case partial
        /// Tried and failed.
        case failed
    }

    public struct Action: Sendable, Encodable {
        var kind: String
        var target: String
        var outcome: Outcome
        var detail: String
        var differences: [String]?
    }

    var startedAt: String
    var finishedAt: String = ""
    var durationMS: Double = 0
    var dryRun: Bool
    var restore: Bool
    var counts: [String: Int] = [:]
    var actions: [Action] = []

    enum CodingKeys: String, CodingKey {
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case durationMS = "duration_ms"
        case dryRun = "dry_run"
        case restore, counts, actions
    }

    mutating func add(_ kind: String, target: String, outcome: Outcome, detail: String, differences: [String]? = nil) {
        actions.append(Action(kind: kind, target: target, outcome: outcome, detail: detail, differences: differences))
    }

    mutating func finish(elapsed: Duration) {
        finishedAt = Timestamp.now()
        durationMS = elapsed.milliseconds
        counts = Dictionary(actions.map { ($0.outcome.rawValue, 1) }, uniquingKeysWith: +)
    }

    /// One line per action, for `sriovd reconcile --dry-run`.
    public var lines: [String] {
        actions.map {
            "\($0.outcome.rawValue.padded(toWidth: 9)) \($0.kind) \($0.target): \($0.detail)"
        }
    }
}

/// The reconciler's memory: the last report, the setting it runs with, and the gate that serializes runs.
final class ReconcileState: Sendable {
    let gate = AsyncLocks<String>()
    private let last = Mutex<ReconcileReport?>(nil)
    private let restoreSetting = Mutex(true)

    var lastReport: ReconcileReport? { last.withLock { $0 } }
    func setLast(_ report: ReconcileReport) { last.withLock { $0 = report } }

    var restore: Bool {
        get { restoreSetting.withLock { $0 } }
        set { restoreSetting.withLock { $0 = newValue } }
    }
}

/// Free VFs found with settings that are not their baseline: not handed out until reset.
final class DirtyVFs: Sendable {
    private let vfs = Mutex<Set<PCIAddress>>([])

    func replace(with set: Set<PCIAddress>) { vfs.withLock { $0 = set } }
    func remove(_ vf: PCIAddress) { _ = vfs.withLock { $0.remove(vf) } }
    func insert(_ vf: PCIAddress) { _ = vfs.withLock { $0.insert(vf) } }
    var all: Set<PCIAddress> { vfs.withLock { $0 } }
}
