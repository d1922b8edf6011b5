import SRIOVCore
import SRIOVHardware
import SRIOVStore

extension ServiceCore {
    /// The one way a PF or VF is changed. In this order: the PF lock; the plan (reads only); the intent, committed
    /// before any hardware write; the writes; their audit and the completion in one transaction; in-memory state.
    ///
    /// When the database refuses the completion, what was written is put back before the answer, and the answer
    /// says so (`storageAfterWrite`). Should the undo fail too, the VF is kept out of the pool and the intent
    /// stays open for the next reconcile.
    func change<C: PFChange>(_ change: C, opening: IntentOpening = .begin) async throws(SRIOVError) -> C.Done {
        let caller = change.caller
        return try await live.during(change.target) { () async throws(SRIOVError) -> C.Done in
            let asked = PhaseLatencies.now()
            let (plan, done) = try await withPFLocks(change.pfs) {
                () async throws(SRIOVError) -> (C.Plan, C.Done?) in
                let planning = PhaseLatencies.shared.record(.pfLockWait, since: asked)
                let plan = try await self.plan(change, caller: caller)
                PhaseLatencies.shared.record(.plan, since: planning)
                let intent: Int64
                switch opening {
                case .open(let id):
                    intent = id
                case .begin:
                    guard let payload = change.payload(plan) else { return (plan, nil) }
                    intent = try await open(change, plan: plan, payload: payload, caller: caller)
                }
                return (plan, try await writeAndFinish(change, plan: plan, intent: intent, caller: caller))
            }
            if let done { return done }
            return try await recordWithoutWrites(change, plan: plan, caller: caller)
        }
    }

    /// Runs `body` holding the lock of every PF named, taken one by one in address order.
    func withPFLocks<T: Sendable>(_ pfs: [PCIAddress], _ body: () async throws(SRIOVError) -> T)
        async throws(SRIOVError) -> T
    {
        let ordered = Set(pfs).sorted()
        guard let first = ordered.first else { return try await body() }
        return try await pfLocks.withLock(first) { () async throws(SRIOVError) -> T in
            try await withPFLocks(Array(ordered.dropFirst()), body)
        }
    }

    /// The plan; a refusal is audited.
    private func plan<C: PFChange>(_ change: C, caller: Caller) async throws(SRIOVError) -> C.Plan {
        do {
            return try await change.plan(self)
        } catch {
            try? await audit(caller.failure(change.action, target: change.target, error))
            throw error
        }
    }

    /// The hardware writes, then their record; the hardware's refusal is thrown once recorded.
    private func writeAndFinish<C: PFChange>(_ change: C, plan: C.Plan, intent: Int64, caller: Caller)
        async throws(SRIOVError) -> C.Done
    {
        let session = HardwareSession(core: self, pf: change.pf, caller: caller)
        let result: Result<C.Output, HardwareFailure>
        let writing = PhaseLatencies.now()
        do { result = .success(try await change.write(session, plan)) } catch { result = .failure(error) }
        PhaseLatencies.shared.record(.hardware, since: writing)
        let done = try await finish(change, plan: plan, intent: intent, result: result, session: session)
        change.settle(self, plan, result)
        if case .failure(let failure) = result { throw failure.error }
        return done
    }

    /// A plan that needs no hardware write: its outcome recorded in one transaction, without the PF lock.
    private func recordWithoutWrites<C: PFChange>(_ change: C, plan: C.Plan, caller: Caller)
        async throws(SRIOVError) -> C.Done
    {
        let done = try await perform { tx in try change.complete(tx, plan, nil) }
        change.settle(self, plan, nil)
        return done
    }

    /// Commits the intent. A refusal by `admit` is audited and thrown.
    private func open<C: PFChange>(_ change: C, plan: C.Plan, payload: JSONValue, caller: Caller)
        async throws(SRIOVError) -> Int64
    {
        let payload = payload.text
        let opened: Result<Int64, SRIOVError> = try await perform { tx in
            if let refusal = try change.admit(tx, plan) {
                try tx.appendAudit(caller.failure(change.action, target: change.target, refusal))
                return .failure(refusal)
            }
            return .success(try tx.beginIntent(kind: change.kind, target: change.target, payload: payload))
        }
        return try opened.get()
    }

    /// Records the outcome with the audit of every write. When that commit fails, undoes the writes and answers
    /// with what the hardware is left as.
    private func finish<C: PFChange>(
        _ change: C, plan: C.Plan, intent: Int64, result: Result<C.Output, HardwareFailure>, session: HardwareSession
    ) async throws(SRIOVError) -> C.Done {
        let changed = session.changedHardware
        let writes = session.takeWrites()
        let caller = session.caller
        let events = writes.map { $0.auditEvent(caller: caller) }
        let outcome: Intent.Outcome = result.isSuccess ? .completed : .rolledBack
        do {
            let done = try await store.write { tx in
                for event in events { try tx.appendAudit(event) }
                try tx.completeIntent(intent, outcome: outcome)
                return try change.complete(tx, plan, result)
            }
            Metrics.shared.recordHardwareWrites(writes)
            return done
        } catch {
            let why = String(describing: error)
            logger.error(
                "the database refused to record a change", metadata: ["target": "\(change.target)", "error": "\(why)"])
            guard changed else {
                await recordRefusal(
                    change, plan: plan, intent: intent, writes: writes, why: why, restored: true, caller: caller)
                throw .storage(why)
            }
            let undo = HardwareSession(core: self, pf: change.pf, caller: caller)
            let restored = await change.undo(undo, plan)
            if !restored, let vf = change.vf { dirtyVFs.insert(vf) }
            await recordRefusal(
                change, plan: plan, intent: intent, writes: writes + undo.takeWrites(), why: why, restored: restored,
                caller: caller)
            change.settle(self, plan, .failure(HardwareFailure(error: .storage(why), leftChanged: !restored)))
            throw .storageAfterWrite(why, restored: restored)
        }
    }

    /// One more try to put the refused change on record, as a failure of the change (so an allocation is released
    /// or left `dirty`, and an idempotent request keeps this answer): its writes, the undo's, and the refusal. The
    /// intent is rolled back only when the hardware is as before. If the database still refuses, the writes are
    /// logged and the open intent is left for the next reconcile.
    private func recordRefusal<C: PFChange>(
        _ change: C, plan: C.Plan, intent: Int64, writes: [HardwareWrite], why: String, restored: Bool,
        caller: Caller
    ) async {
        let error: SRIOVError =
            writes.contains(where: \.succeeded) ? .storageAfterWrite(why, restored: restored) : .storage(why)
        let failure = HardwareFailure(error: error, leftChanged: !restored)
        let events = writes.map { $0.auditEvent(caller: caller) }
        do {
            _ = try await store.write { tx in
                for event in events { try tx.appendAudit(event) }
                if restored { try tx.completeIntent(intent, outcome: .rolledBack) }
                return try change.complete(tx, plan, .failure(failure))
            }
            Metrics.shared.recordHardwareWrites(writes)
        } catch {
            for write in writes {
                logger.error(
                    "hardware write not on record: the database refused its audit",
                    metadata: [
                        "target": "\(write.target)", "operation": "\(write.operation)", "value": "\(write.value)",
                        "errno": "\(write.errno ?? "none")",
                    ])
            }
        }
    }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}

extension HardwareWrite {
    /// The audit event of this write: `hw.netlink.write` or `hw.sysfs.write`, with its errno and duration.
    func auditEvent(caller: Caller) -> AuditEvent {
        var details: [String: JSONValue] = [
            "operation": .string(operation), "value": .string(value), "errno": errno.map(JSONValue.string) ?? .null,
            "duration_ms": .number(duration.milliseconds),
        ]
        if kind == .sysfs { details["attribute"] = .string(operation) }
        return caller.event(
            "hw.\(kind.rawValue).write", target: target.description, outcome: succeeded ? .success : .failure,
            error: errno, details: details)
    }
}

extension Metrics {
    func recordHardwareWrites(_ writes: [HardwareWrite]) {
        for write in writes { recordHardwareWrite(errnoName: write.errno) }
    }
}
