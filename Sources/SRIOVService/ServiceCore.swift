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
    let resizing = ResizingPFs()
    let reconcileState = ReconcileState()
    let releasing = ReleasingAllocations()
    let dirtyVFs = DirtyVFs()
    let writeTimeout: Duration
    let logger: Logger

    public init(store: Store, inventory: InventoryCache, host: HardwareHost, writeTimeout: Duration, logger: Logger) {
        self.store = store
        self.inventory = inventory
        self.host = host
        self.writer = SRIOVWriter(sysfs: host.sysfs)
        self.vfs = VFController(host: host)
        self.writeTimeout = writeTimeout
        self.logger = logger
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

    /// One hardware write on the PF's queue, bounded by the write timeout, and audited with its errno and
    /// duration whatever happens.
    func hardwareWrite(
        pf: PCIAddress, attribute: String, value: String, caller: Caller, timeout: Duration? = nil,
        _ work: @escaping @Sendable (SRIOVWriter) throws -> Void
    ) async throws(HardwareWriteError) {
        let writer = self.writer
        let started = ContinuousClock.now
        var failure: HardwareWriteError?
        do {
            try await queues.run(pf: pf, timeout: timeout ?? writeTimeout) {
                do {
                    try work(writer)
                } catch let error as SysfsError {
                    throw HardwareWriteError.kernel(error)
                }
            }
        } catch let error as HardwareWriteError {
            failure = error
        } catch {
            failure = .timedOut
        }
        let elapsed = ContinuousClock.now - started
        let millis = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        var details: [String: JSONValue] = [
            "attribute": .string(attribute), "value": .string(value),
            "duration_ms": .number((millis * 1000).rounded() / 1000),
        ]
        switch failure {
        case .kernel(let error)?: details["errno"] = .string(error.name)
        case .timedOut?: details["errno"] = .string("ETIMEDOUT")
        case nil: details["errno"] = .null
        }
        switch failure {
        case .kernel(let error)?: Metrics.shared.recordHardwareWrite(errnoName: error.name)
        case .timedOut?: Metrics.shared.recordHardwareWrite(errnoName: "ETIMEDOUT")
        case nil: Metrics.shared.recordHardwareWrite(errnoName: nil)
        }
        let event = caller.event(
            "hw.sysfs.write", target: pf.description, outcome: failure == nil ? .success : .failure,
            error: failure.map { "\($0)" }, details: details)
        do { try await audit(event) } catch {
            logger.error("audit of a hardware write failed", metadata: ["error": "\(error)"])
        }
        if let failure { throw failure }
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
