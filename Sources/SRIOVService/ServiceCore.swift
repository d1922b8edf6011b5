import FoundationEssentials
import Glibc
import Logging
import SRIOVCore
import SRIOVHardware
import SRIOVStore

/// What every use case shares: the store, the inventory, the hardware writer and the per-PF machinery.
public final class ServiceCore: Sendable {
    public let store: Store
    public let inventory: InventoryCache
    let host: HardwareHost
    let writer: SRIOVWriter
    let vfs: VFController
    let queues = PFWriteQueues()
    let pfLocks = PFLocks()
    let live = LiveTargets()
    let reconcileState = ReconcileState()
    let releasing = ReleasingAllocations()
    let dirtyVFs = DirtyVFs()
    /// VF link readings with stats, and the health last seen (`Health/`).
    let telemetry = VFTelemetry()
    let healthLedger = HealthLedger()
    let writeTimeout: Duration
    let logger: Logger
    /// `GET /events`: the audit log, streamed.
    let events: EventHub

    public init(store: Store, inventory: InventoryCache, host: HardwareHost, writeTimeout: Duration, logger: Logger) {
        self.store = store
        self.inventory = inventory
        self.host = host
        self.writer = SRIOVWriter(sysfs: host.sysfs)
        self.vfs = VFController(host: host)
        self.writeTimeout = writeTimeout
        self.logger = logger
        self.events = EventHub(store: store, inventory: inventory, logger: logger)
        inventory.observeChanges { [weak self] changes in
            guard let self else { return }
            Task { await self.recordObserved(changes) }
        }
    }

    /// Changes of the host that sriovd did not make (a PF or VF appearing or vanishing, a link going up or down, a
    /// driver bound behind its back) go on record with actor `kernel`, and so into the event stream.
    func recordObserved(_ changes: [InventoryChange]) async {
        let events = changes.map { change in
            Caller.kernel.event(
                change.kind.rawValue, target: change.device.description, outcome: .success,
                details: [
                    "pf": .string(change.pf.description),
                    "vf": change.device == change.pf ? .null : .string(change.device.description),
                    "from": change.from.map(JSONValue.string) ?? .null, "to": change.to.map(JSONValue.string) ?? .null,
                ])
        }
        do {
            try await store.write { tx in for event in events { try tx.appendAudit(event) } }
        } catch StoreError.closed {
            // Shutting down: a late rescan (a PF settling after a resize) has nowhere to go.
        } catch {
            logger.error("could not record changes of the host", metadata: ["error": "\(error)"])
        }
    }

    /// A store write whose failures become `SRIOVError.storage`.
    func perform<T: Sendable>(_ body: @escaping @Sendable (Transaction) throws -> T) async throws(SRIOVError) -> T {
        do {
            return try await store.write(body)
        } catch let error as SRIOVError {
            throw error
        } catch {
            logger.error("store write failed", metadata: ["error": "\(error)"])
            throw .storage(String(describing: error))
        }
    }

    func audit(_ event: AuditEvent) async throws(SRIOVError) {
        _ = try await perform { tx in try tx.appendAudit(event) }
    }
}

/// How a hardware write failed.
enum HardwareWriteError: Error, Sendable, CustomStringConvertible {
    case kernel(SysfsError)
    case timedOut

    var description: String {
        switch self {
        case .kernel(let error): "\(error.name)"
        case .timedOut: "timed out"
        }
    }

    /// The answer for a failed `sriov_numvfs` (or autoprobe) write, per the kernel's errno.
    func domainError(pf: PCIAddress, requested: Int, totalVFs: Int, reread: Int?) -> SRIOVError {
        switch self {
        case .timedOut:
            let now = reread.map { "sriov_numvfs reads \($0) now" } ?? "the PF could not be read back"
            return .hardwareTimeout(pf, now)
        case .kernel(let error):
            switch error.errno {
            case ERANGE: return .countOutOfRange(requested: requested, totalVFs: totalVFs)
            case ENOENT: return .noSRIOVDriver(pf)
            case EBUSY: return .kernelBusy(pf)
            default: return .kernel(operation: "write to \(pf)", errno: error.errno, name: error.name)
            }
        }
    }
}
