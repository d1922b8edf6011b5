import Logging

/// How long each step of startup took, logged with the `ready` line (`bench/startup.sh` reads it).
struct StartupPhases {
    private let clock = ContinuousClock()
    private var last: ContinuousClock.Instant
    private var laps: [(name: String, duration: Duration)] = []

    init() { last = clock.now }

    /// Ends the step `name`, begun when the previous one ended.
    mutating func lap(_ name: String) {
        let now = clock.now
        laps.append((name, now - last))
        last = now
    }

    /// `NAME_ms` for each step, in milliseconds with one decimal.
    var metadata: Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        for lap in laps {
            let tenths = (lap.duration / .microseconds(100)).rounded()
            metadata[lap.name + "_ms"] = "\(Int(tenths) / 10).\(Int(tenths) % 10)"
        }
        return metadata
    }
}
