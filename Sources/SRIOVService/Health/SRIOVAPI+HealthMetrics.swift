import HTTPServer
import Netlink
import SRIOVCore

extension SRIOVAPI {
    /// Health gauges (always: bounded by PFs × 3), and with `--vf-metrics` each VF's traffic counters from the last
    /// health sweep, for at most `vfMetricsLimit` VFs: those held first, then by address. Nothing here asks the
    /// kernel: a scrape never waits for a driver.
    func renderHealthMetrics(into text: inout PrometheusText) throws {
        let snapshot = core.inventory.snapshot
        let dirty = core.dirtyVFs.all
        let holders = try core.store.read { view in
            try snapshot.host.pfs.map { entry in
                Dictionary(
                    try view.holdingAllocations(pf: entry.pf.address).map { ($0.vf, $0) }, uniquingKeysWith: { $1 })
            }
        }
        text.family(
            "sriovd_pf_health", "1 for each PF's health status now (ok, degraded, unavailable), else 0.", .gauge)
        for entry in snapshot.host.pfs {
            let status = Health.of(entry.pf).status
            for candidate in Health.Status.allCases {
                text.sample(
                    "sriovd_pf_health", ["pf": entry.pf.address.description, "status": candidate.rawValue],
                    candidate == status ? 1 : 0)
            }
        }
        text.family("sriovd_vfs_health", "VFs by PF and health status.", .gauge)
        for (entry, held) in zip(snapshot.host.pfs, holders) {
            var counts: [Health.Status: Int] = [:]
            for vf in entry.vfs {
                counts[core.health(of: vf, pf: entry.pf, holder: held[vf.address], dirty: dirty).status, default: 0] +=
                    1
            }
            for status in Health.Status.allCases {
                text.sample(
                    "sriovd_vfs_health", ["pf": entry.pf.address.description, "status": status.rawValue],
                    Double(counts[status] ?? 0))
            }
        }
        guard let limit = vfMetricsLimit else { return }
        renderVFTraffic(
            into: &text, snapshot: snapshot, held: holders.reduce(into: Set()) { $0.formUnion($1.keys) },
            limit: limit)
    }

    private func renderVFTraffic(
        into text: inout PrometheusText, snapshot: InventorySnapshot, held: Set<PCIAddress>, limit: Int
    ) {
        let readings = core.telemetry.all
        var reported: [(vf: VirtualFunction, stats: VFStats)] = []
        for entry in snapshot.host.pfs {
            for vf in entry.vfs {
                if let stats = readings[entry.pf.address]?[vf.index]?.stats { reported.append((vf, stats)) }
            }
        }
        reported.sort { lhs, rhs in
            let (l, r) = (held.contains(lhs.vf.address), held.contains(rhs.vf.address))
            return l != r ? l : lhs.vf.address < rhs.vf.address
        }
        let shown = reported.prefix(limit)
        let counters: [(String, String, KeyPath<VFStats, UInt64?>)] = [
            ("sriovd_vf_rx_packets_total", "Packets the VF received, as its PF's driver reports.", \.rxPackets),
            ("sriovd_vf_tx_packets_total", "Packets the VF sent.", \.txPackets),
            ("sriovd_vf_rx_bytes_total", "Bytes the VF received.", \.rxBytes),
            ("sriovd_vf_tx_bytes_total", "Bytes the VF sent.", \.txBytes),
            ("sriovd_vf_rx_dropped_total", "Received packets dropped.", \.rxDropped),
            ("sriovd_vf_tx_dropped_total", "Packets to send that were dropped.", \.txDropped),
            ("sriovd_vf_broadcast_total", "Broadcast packets received.", \.broadcast),
            ("sriovd_vf_multicast_total", "Multicast packets received.", \.multicast),
        ]
        for (name, help, keyPath) in counters {
            text.family(name, help, .counter)
            for (vf, stats) in shown {
                guard let value = stats[keyPath: keyPath] else { continue }
                text.sample(name, ["pf": vf.pf.description, "vf": vf.address.description], Double(value))
            }
        }
        text.family(
            "sriovd_vf_metrics_omitted", "VFs with traffic counters left out of /metrics by --vf-metrics-limit.", .gauge
        )
        text.sample("sriovd_vf_metrics_omitted", [:], Double(reported.count - shown.count))
    }
}
