import SRIOVStore

extension Metrics {
    /// The phases of durable changes (PF lock wait, plan, hardware, store queue, body, commit, checkpoint, commit
    /// wait) as one histogram family labelled by phase.
    static func render(_ phases: PhaseLatencies, into text: inout PrometheusText) {
        let name = "sriovd_phase_duration_seconds"
        text.family(
            name,
            "Time durable changes spend in each phase: PF lock wait, plan, hardware, store queue, body, "
                + "commit (WAL append and fsync), checkpoint, commit wait (submission to resumption).", .histogram)
        let bounds = PhaseLatencies.bounds.map(PrometheusText.format)
        for (phase, figures) in phases.snapshot() {
            let label = ["phase": phase.rawValue]
            var cumulative = 0
            for (bound, count) in zip(bounds, figures.counts) {
                cumulative += count
                text.sample(name + "_bucket", label.merging(["le": bound]) { $1 }, Double(cumulative))
            }
            text.sample(name + "_bucket", label.merging(["le": "+Inf"]) { $1 }, Double(figures.count))
            text.sample(name + "_sum", label, figures.sum)
            text.sample(name + "_count", label, Double(figures.count))
        }
    }
}
