import HTTPServer
import SRIOVCore
import SRIOVStore

/// Capacity, quotas and leases: `GET /capacity`, `GET /quotas`, `PUT` and `DELETE /quotas/{owner_prefix}`, and
/// `POST /allocations/{id}/renew`; and the capacity and quota gauges of `GET /metrics`.
extension SRIOVAPI {
    func addCapacityRoutes(to router: inout Router) {
        router.add(.GET, "/capacity") { request, _, _ in
            answer(request) { .json(.ok, Array(Self.json(try capacityReport()).text.utf8)) }
        }
        router.add(.GET, "/quotas") { request, _, _ in
            answer(request) {
                let items = try QuotaService(core: core).standings().map(Self.json)
                return .json(.ok, Array(JSONValue.object(["items": .array(items), "next": .null]).text.utf8))
            }
        }
        router.add(.PUT, "/quotas/{owner_prefix}") { request, context, params in
            mutation(request, context) { caller in
                let prefix = try ownerPrefix(params["owner_prefix"])
                let body = try JSONBody.decode(QuotaRequest.self, from: request.body)
                let service = QuotaService(core: core)
                let quota = try await service.set(
                    ownerPrefix: prefix, maxVFs: body.maxVFs, perNUMANode: body.perNUMANode, caller: caller)
                let standing =
                    try service.standings().first { $0.quota.ownerPrefix == prefix }
                    ?? QuotaService.Standing(quota: quota, use: QuotaUse())
                return .json(.ok, Array(Self.json(standing).text.utf8))
            }
        }
        router.add(.DELETE, "/quotas/{owner_prefix}") { request, context, params in
            mutation(request, context) { caller in
                try await QuotaService(core: core).delete(
                    ownerPrefix: try ownerPrefix(params["owner_prefix"]), caller: caller)
                return HTTPResponse(status: .noContent, headers: HTTPHeaders(), body: [])
            }
        }
        router.add(.POST, "/allocations/{id}/renew") { request, context, params in
            mutation(request, context) { caller in
                let body =
                    request.body.isEmpty ? nil : try JSONBody.decode(LeaseRenewalRequest.self, from: request.body)
                let renewed = try await LeaseService(core: core).renew(
                    id: params["id"] ?? "", leaseSeconds: body?.leaseSeconds, caller: caller)
                return JSONBody.ok(view(renewed))
            }
        }
    }

    /// The owner prefix of a quota's path: percent-decoded (owners hold `/`, sent as `%2F`), 1 to 256 bytes of
    /// printable text as owners are.
    private func ownerPrefix(_ segment: String?) throws(SRIOVError) -> String {
        let prefix = HTTPRequest.percentDecodedPathSegment(segment ?? "")
        guard !prefix.isEmpty, prefix.utf8.count <= AllocationRequest.maxOwnerLength,
            prefix.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
        else {
            throw .invalidParameter("owner_prefix", "must be 1 to 256 bytes of printable text, e.g. k8s:team-a%2F")
        }
        return prefix
    }

    /// The capacity of the host now: the in-memory inventory and one store read of the held VFs.
    func capacityReport() throws -> CapacityReport {
        let snapshot = core.inventory.snapshot
        let dirtyFree = core.dirtyVFs.all
        let (held, dirty, maintenance) = try read { view in
            var held = Set<PCIAddress>()
            var dirty = dirtyFree
            for entry in snapshot.host.pfs {
                for allocation in try view.holdingAllocations(pf: entry.pf.address) {
                    if allocation.state == .dirty {
                        dirty.insert(allocation.vf)
                    } else {
                        held.insert(allocation.vf)
                    }
                }
            }
            return (held, dirty, try view.maintenance())
        }
        return CapacityReport(host: snapshot.host, held: held, dirty: dirty, maintenance: maintenance)
    }

    /// Gauges of `GET /metrics`: each PF's capacity (labelled with what `GET /capacity` groups by, so sums by
    /// NUMA node, driver or device are one PromQL `sum by`), and each quota's limit and use.
    func renderCapacityMetrics(into text: inout PrometheusText) throws {
        let report = try capacityReport()
        text.family(
            "sriovd_capacity_vfs",
            "VFs of each PF by kind: total (sriov_totalvfs), enabled, free, held, dirty, reserved, cordoned, headroom.",
            .gauge)
        for pf in report.pfs {
            var labels = [
                "pf": pf.pf.description, "numa_node": pf.numaNode.map(String.init) ?? "", "driver": pf.driver ?? "",
                "vendor_device": pf.vendorDevice,
            ]
            for (kind, value) in Self.fields(pf.counts) {
                labels["kind"] = kind
                text.sample("sriovd_capacity_vfs", labels, Double(value))
            }
        }
        let standings = try QuotaService(core: core).standings()
        text.family("sriovd_quota_limit_vfs", "The most VFs the owners under each quota's prefix may hold.", .gauge)
        for standing in standings {
            text.sample(
                "sriovd_quota_limit_vfs", ["owner_prefix": standing.quota.ownerPrefix], Double(standing.quota.maxVFs))
        }
        text.family("sriovd_quota_used_vfs", "VFs the owners under each quota's prefix hold now.", .gauge)
        for standing in standings {
            text.sample(
                "sriovd_quota_used_vfs", ["owner_prefix": standing.quota.ownerPrefix], Double(standing.use.total))
        }
    }

    // MARK: - Rendering

    private static func fields(_ counts: CapacityCounts) -> [(String, Int)] {
        [
            ("total", counts.totalVFs), ("enabled", counts.enabled), ("free", counts.free), ("held", counts.held),
            ("dirty", counts.dirty), ("reserved", counts.reserved), ("cordoned", counts.cordoned),
            ("headroom", counts.headroom),
        ]
    }

    private static func json(_ counts: CapacityCounts, adding extra: [String: JSONValue] = [:]) -> JSONValue {
        var members = extra
        for (kind, value) in fields(counts) { members[kind == "total" ? "total_vfs" : kind] = .int(value) }
        return .object(members)
    }

    static func json(_ report: CapacityReport) -> JSONValue {
        .object([
            "host": json(report.host),
            "pfs": .array(
                report.pfs.map { pf in
                    json(
                        pf.counts,
                        adding: [
                            "pf": .string(pf.pf.description), "numa_node": pf.numaNode.map(JSONValue.int) ?? .null,
                            "driver": pf.driver.map(JSONValue.string) ?? .null,
                            "vendor_device": .string(pf.vendorDevice),
                        ])
                }),
            "numa_nodes": .array(
                report.byNUMANode.map { json($0.counts, adding: ["numa_node": $0.key.map(JSONValue.int) ?? .null]) }),
            "drivers": .array(
                report.byDriver.map { json($0.counts, adding: ["driver": $0.key.map(JSONValue.string) ?? .null]) }),
            "devices": .array(
                report.byVendorDevice.map { json($0.counts, adding: ["vendor_device": .string($0.key)]) }),
        ])
    }

    static func json(_ standing: QuotaService.Standing) -> JSONValue {
        let quota = standing.quota
        let nodes = Set(quota.perNUMANode.keys).union(standing.use.byNUMANode.keys).sorted()
        return .object([
            "owner_prefix": .string(quota.ownerPrefix), "max_vfs": .int(quota.maxVFs),
            "used": .int(standing.use.total), "updated_at": .string(quota.updatedAt),
            "per_numa_node": .array(
                nodes.map { node in
                    .object([
                        "numa_node": .int(node), "max_vfs": quota.perNUMANode[node].map(JSONValue.int) ?? .null,
                        "used": .int(standing.use.byNUMANode[node] ?? 0),
                    ])
                }),
        ])
    }
}
