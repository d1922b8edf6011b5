import SRIOVCore
import SRIOVStore

/// Leases: renewing one, and releasing those that ran out.
///
/// An expired lease is released through the normal release path (`AllocationService.release`, so the VF is
/// restored, audited and sent as an event) with actor `lease`. The expiry is in the database, so a start after a
/// long stop releases what expired meanwhile (`StartupRecovery` sweeps once), and `run(every:)` sweeps while serving.
public struct LeaseService: Sendable {
    let core: ServiceCore

    /// Who releases expired leases, in the audit.
    public static let caller = Caller(actor: "lease", requestID: nil)

    public init(core: ServiceCore) {
        self.core = core
    }

    /// Extends an active allocation's lease to `leaseSeconds` (default: its own length) from now. A lease that has
    /// already run out is not renewed: its release may be under way.
    func renew(id: String, leaseSeconds: Int?, caller: Caller) async throws(SRIOVError) -> Allocation {
        let action = "allocation.renew"
        let result: Result<Allocation, SRIOVError> = try await core.perform { tx in
            let now = Timestamp.now()
            let refusal: SRIOVError?
            var renewed: Allocation?
            switch try tx.allocation(id: id) {
            case let allocation? where allocation.state == .active:
                if let expiresAt = allocation.expiresAt, expiresAt <= now {
                    refusal = .leaseExpired(id, expiredAt: expiresAt)
                } else if let seconds = leaseSeconds ?? allocation.leaseSeconds {
                    var after = allocation
                    after.leaseSeconds = seconds
                    after.expiresAt = Timestamp.after(seconds: seconds)
                    try tx.renewLease(id: id, leaseSeconds: seconds, expiresAt: after.expiresAt!)
                    try tx.appendAudit(
                        caller.event(
                            action, target: id, outcome: .success,
                            details: [
                                "before": AllocationService.json(allocation), "after": AllocationService.json(after),
                            ]))
                    renewed = after
                    refusal = nil
                } else {
                    refusal = .invalidField("lease_seconds", "is required: the allocation has no lease to renew")
                }
            default:
                refusal = .allocationNotFound(id)
            }
            if let refusal {
                try tx.appendAudit(caller.failure(action, target: id, refusal))
                return .failure(refusal)
            }
            return .success(renewed!)
        }
        return try result.get()
    }

    /// Releases every active allocation whose lease has run out; returns how many were released. One that cannot
    /// be released now (its release failed, or it is being changed) is logged and tried again at the next sweep.
    @discardableResult
    public func releaseExpired() async -> Int {
        let expired: [String]
        do {
            expired = try core.store.read { try $0.expiredLeases(now: Timestamp.now()) }
        } catch {
            core.logger.warning("expired leases not read", metadata: ["error": "\(error)"])
            return 0
        }
        var released = 0
        for id in expired {
            do {
                try await AllocationService(core: core).release(id: id, caller: Self.caller)
                released += 1
            } catch {
                core.logger.warning(
                    "an expired lease was not released; retrying at the next sweep",
                    metadata: ["allocation.id": "\(id)", "error": "\(error)"])
            }
        }
        if released > 0 { core.logger.info("expired leases released", metadata: ["leases.released": "\(released)"]) }
        return released
    }

    /// Sweeps for expired leases every `interval` until the task is cancelled.
    public func run(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            await releaseExpired()
        }
    }
}
