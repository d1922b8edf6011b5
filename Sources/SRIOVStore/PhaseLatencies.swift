import Glibc
import Synchronization

/// Where durable changes spend their time: one latency histogram per phase, cheap enough to leave on (a monotonic
/// clock read at each edge and one uncontended lock per observation). `GET /metrics` exposes them as
/// `sriovd_phase_duration_seconds`, so a benchmark can show which phase makes the tail.
public final class PhaseLatencies: Sendable {
    /// The phases of a durable change, in the order a change meets them.
    public enum Phase: String, CaseIterable, Sendable {
        /// Waiting for a PF's lock (`ServiceCore.change`).
        case pfLockWait = "pf_lock_wait"
        /// Reading the hardware to plan a change, under the PF lock.
        case plan
        /// The hardware writes of a change, under the PF lock.
        case hardware
        /// A write body waiting in the store's queue until its batch began.
        case queue
        /// A write body running in its savepoint.
        case body
        /// A batch's COMMIT: appending to the WAL and its fsync, without a checkpoint.
        case commit
        /// A WAL checkpoint: copying pages into the database file and its fsync.
        case checkpoint
        /// A write from its submission until its caller resumed (the caller's whole commit wait).
        case commitWait = "commit_wait"
    }

    /// The process's phases (the store's writer and the service record here).
    public static let shared = PhaseLatencies()

    /// Upper bounds, in seconds, of the buckets (then +Inf): ten per decade from 10 µs to 10 s, so a percentile read
    /// from them is within about 12 %. Rounded to three significant digits.
    public static let bounds: [Double] = (0...60).map { step in
        let exact = 1e-5 * pow(10, Double(step) / 10)
        let scale = pow(10, 2 - floor(log10(exact)))
        return (exact * scale).rounded() / scale
    }

    private struct State {
        var counts = [Int](repeating: 0, count: Phase.allCases.count * (PhaseLatencies.bounds.count + 1))
        var sums = [Double](repeating: 0, count: Phase.allCases.count)
    }

    private let state = Mutex(State())

    public init() {}

    /// A monotonic clock reading in nanoseconds.
    @inline(__always)
    public static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    /// Records `phase` as lasting from `start` (a `now()` reading) until now; returns now.
    @discardableResult
    public func record(_ phase: Phase, since start: UInt64) -> UInt64 {
        let end = Self.now()
        record(phase, nanoseconds: end &- start)
        return end
    }

    /// Records one observation of `phase`.
    public func record(_ phase: Phase, nanoseconds: UInt64) {
        let seconds = Double(nanoseconds) / 1e9
        // log10 of the duration in units of 10 µs, times ten, rounded up: the first bound at or above it.
        var slot =
            seconds <= Self.bounds[0] ? 0 : min(Self.bounds.count, Int((log10(seconds / 1e-5) * 10).rounded(.up)))
        if slot < Self.bounds.count, seconds > Self.bounds[slot] { slot += 1 }
        let row = Self.index(phase)
        state.withLock { state in
            state.counts[row * (Self.bounds.count + 1) + slot] += 1
            state.sums[row] += seconds
        }
    }

    /// One phase's figures: counts per bucket (the last is above every bound), and the sum of the durations.
    public struct Snapshot: Sendable {
        public var counts: [Int]
        public var sum: Double
        public var count: Int { counts.reduce(0, +) }
    }

    /// The figures of every phase so far.
    public func snapshot() -> [(phase: Phase, figures: Snapshot)] {
        let state = self.state.withLock { $0 }
        let width = Self.bounds.count + 1
        return Phase.allCases.map { phase in
            let row = Self.index(phase)
            return (phase, Snapshot(counts: Array(state.counts[row * width..<(row + 1) * width]), sum: state.sums[row]))
        }
    }

    private static func index(_ phase: Phase) -> Int { Phase.allCases.firstIndex(of: phase)! }
}
