import SRIOVCore

/// What the daemon does before it serves mutations: reconcile the stored promises with the hardware
/// (finishing what a crash interrupted, and after a reboot putting VFs and settings back).
public struct StartupRecovery: Sendable {
    let core: ServiceCore
    /// Whether to put VFs and settings back (reboot recovery), or only report.
    let restore: Bool

    public init(core: ServiceCore, restore: Bool = true) {
        self.core = core
        self.restore = restore
    }

    public func run() async throws {
        core.reconcileState.restore = restore
        let report = try await Reconciler(core: core, restore: restore).run(dryRun: false, rescan: false)
        core.logger.info(
            "startup reconciliation finished",
            metadata: ["duration_ms": "\(report.durationMS)", "actions": "\(report.actions.count)"])
        // Leases that ran out while sriovd was stopped are released before it serves.
        await LeaseService(core: core).releaseExpired()
    }

    /// The plan a reconcile would carry out, touching nothing.
    public func plan() async throws -> ReconcileReport {
        try await Reconciler(core: core, restore: restore).run(dryRun: true)
    }
}
