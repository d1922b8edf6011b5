import HTTPServer
import SRIOVCore

extension SRIOVAPI {
    /// Routes for operating the daemon itself: `GET /metrics`.
    func addOperationsRoutes(to router: inout Router) {
        router.add(.GET, "/metrics") { request, _, _ in
            var text = PrometheusText()
            do {
                try renderInventoryMetrics(into: &text)
                try renderHealthMetrics(into: &text)
                try renderCapacityMetrics(into: &text)
            } catch {
                return .response(SRIOVError.storage(String(describing: error)).response(instance: request.path))
            }
            Metrics.shared.render(into: &text)
            var headers = HTTPHeaders()
            headers.add("Content-Type", PrometheusText.contentType)
            return .response(HTTPResponse(status: .ok, headers: headers, body: Array(text.text.utf8)))
        }
    }

    /// Gauges read at scrape time: readiness, PFs, and each PF's VFs by state, from the in-memory inventory and
    /// one store read.
    private func renderInventoryMetrics(into text: inout PrometheusText) throws {
        let snapshot = core.inventory.snapshot
        let pfs = snapshot.host.pfs
        let holding = try core.store.read { view in
            try pfs.map { entry in try view.holdingAllocations(pf: entry.pf.address) }
        }
        text.family("sriovd_ready", "1 once startup recovery has finished and mutations are served.", .gauge)
        text.sample("sriovd_ready", [:], readiness.isReady ? 1 : 0)
        text.family("sriovd_pfs", "SR-IOV capable physical functions on the host.", .gauge)
        text.sample("sriovd_pfs", [:], Double(pfs.count))
        text.family("sriovd_pf_total_vfs", "The most VFs each PF can have (sriov_totalvfs).", .gauge)
        for entry in pfs {
            text.sample("sriovd_pf_total_vfs", ["pf": entry.pf.address.description], Double(entry.pf.totalVFs))
        }
        text.family("sriovd_pf_vfs", "VFs each PF has now (sriov_numvfs).", .gauge)
        for entry in pfs {
            text.sample("sriovd_pf_vfs", ["pf": entry.pf.address.description], Double(entry.vfs.count))
        }
        text.family(
            "sriovd_vfs", "VFs by PF and state: allocated (held), dirty (released, not yet restored), free.", .gauge)
        for (entry, allocations) in zip(pfs, holding) {
            let pf = entry.pf.address.description
            let dirty = allocations.filter { $0.state == .dirty }.count
            let allocated = allocations.count - dirty
            let free = max(0, entry.vfs.count - allocations.count)
            text.sample("sriovd_vfs", ["pf": pf, "state": "allocated"], Double(allocated))
            text.sample("sriovd_vfs", ["pf": pf, "state": "dirty"], Double(dirty))
            text.sample("sriovd_vfs", ["pf": pf, "state": "free"], Double(free))
        }
    }
}
