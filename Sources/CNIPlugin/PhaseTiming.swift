import Synchronization

/// Where one run's time goes: named phases measured around the steps (sriovd requests, namespace and rtnetlink
/// work), and the rest. With `SRIOVD_CNI_TIMING=1` in the environment the plugin logs them on stderr in one line,
/// which `bench/cni.sh` reads.
public final class PhaseTiming: Sendable {
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    private let phases = Mutex<[(String, Duration)]>([])

    public init() { start = clock.now }

    /// Runs `body`, adding its duration to the phase `name`.
    func measure<T, E: Error>(_ name: String, _ body: () throws(E) -> T) throws(E) -> T {
        let began = clock.now
        defer {
            let took = clock.now - began
            phases.withLock { phases in
                if let index = phases.firstIndex(where: { $0.0 == name }) {
                    phases[index].1 += took
                } else {
                    phases.append((name, took))
                }
            }
        }
        return try body()
    }

    /// `name=1.23` pairs in milliseconds, in order, then `other=` (what no phase covered) and `total=`.
    public var line: String {
        let total = clock.now - start
        let recorded = phases.withLock { $0 }
        let covered = recorded.reduce(Duration.zero) { $0 + $1.1 }
        return (recorded + [("other", total - covered), ("total", total)])
            .map { "\($0.0)=\(Self.milliseconds($0.1))" }.joined(separator: " ")
    }

    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        return String((value * 100).rounded() / 100)
    }
}
