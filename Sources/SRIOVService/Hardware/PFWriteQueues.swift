import Dispatch
import FoundationEssentials
import Glibc
import SRIOVCore
import Synchronization

/// Runs blocking hardware work one PF at a time, many PFs in parallel, each step bounded by a timeout.
///
/// A sysfs write blocks inside the kernel and cannot be cancelled. On timeout the caller is answered at once
/// and the stuck write keeps its PF's queue: later work for that PF waits behind it (and times out in turn),
/// while other PFs and every read carry on.
public final class PFWriteQueues: Sendable {
    public enum Failure: Error, Sendable {
        case timedOut
    }

    private let queues = Mutex<[PCIAddress: DispatchQueue]>([:])

    public init() {}

    private func queue(for pf: PCIAddress) -> DispatchQueue {
        queues.withLock { queues in
            if let queue = queues[pf] { return queue }
            let queue = DispatchQueue(label: "sriovd.pf.\(pf)")
            queues[pf] = queue
            return queue
        }
    }

    /// Runs `work` on the PF's serial queue. Throws `Failure.timedOut` if it has not finished (queueing time
    /// included) within `timeout`; otherwise returns or rethrows what `work` did.
    public func run<T: Sendable>(
        pf: PCIAddress, timeout: Duration, _ work: @escaping @Sendable () throws -> T
    ) async throws -> T {
        let once = OnceResumer<T>()
        return try await withCheckedThrowingContinuation { continuation in
            once.install(continuation)
            queue(for: pf).async {
                once.resume(with: Result { try work() })
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout.dispatchInterval) {
                once.resume(with: .failure(Failure.timedOut))
            }
        }
    }
}

/// Resumes a continuation exactly once, whichever of completion or timeout comes first.
private final class OnceResumer<T: Sendable>: Sendable {
    private let state = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func install(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0 = continuation }
    }

    func resume(with result: Result<T, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            defer { state = nil }
            return state
        }
        continuation?.resume(with: result)
    }
}
