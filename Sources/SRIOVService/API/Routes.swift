import FoundationEssentials
import Glibc
import HTTPServer
import SRIOVCore
import SRIOVStore

/// The REST API: routes, parameter parsing and rendering. Use cases do the work; errors become problems in
/// `ErrorMapping.swift`.
public struct SRIOVAPI: Sendable {
    let core: ServiceCore
    let readiness: Readiness
    let operations: OperationRunner
    /// `--vf-metrics`: the most VFs given traffic series on `/metrics`; nil (the default) serves none.
    public var vfMetricsLimit: Int?

    public init(core: ServiceCore, readiness: Readiness) {
        self.core = core
        self.readiness = readiness
        self.operations = OperationRunner(core: core)
    }

    public func makeRouter() -> Router {
        var router = Router()
        addProbeRoutes(to: &router)
        addPFRoutes(to: &router)
        addVFRoutes(to: &router)
        addAllocationRoutes(to: &router)
        addAuditAndReconcileRoutes(to: &router)
        addOperationsRoutes(to: &router)
        addAsyncOperationRoutes(to: &router)
        addEventRoutes(to: &router)
        addUIRoutes(to: &router)
        addCapacityRoutes(to: &router)
        addAttachmentRoutes(to: &router)
        addMaintenanceRoutes(to: &router)
        addDockerRoutes(to: &router)
        router.onRefusal = { refused in await auditRefusal(refused) }
        return router
    }

    /// `/healthz`, `/readyz` and `/openapi.yaml`.
    private func addProbeRoutes(to router: inout Router) {
        router.add(.GET, "/healthz") { _, _, _ in .response(JSONBody.ok(["status": "ok"])) }
        router.add(.GET, "/readyz") { _, _, _ in readiness.answer() }
        router.add(.GET, "/openapi.yaml") { _, _, _ in
            var headers = HTTPHeaders()
            headers.add("Content-Type", "application/yaml")
            return .response(HTTPResponse(status: .ok, headers: headers, body: Array(EmbeddedOpenAPI.text.utf8)))
        }
    }

    /// `/pfs`, one PF, and its VF count.
    private func addPFRoutes(to router: inout Router) {
        router.add(.GET, "/pfs") { request, _, _ in answer(request) { try listPFs(request) } }
        router.add(.GET, "/pfs/{address}") { request, _, params in
            answer(request) { try pfDetail(pciAddress(params["address"])) }
        }
        router.add(.GET, "/pfs/{address}/vfs") { request, _, params in
            answer(request) { try listVFs(pf: pciAddress(params["address"])) }
        }
        router.add(.POST, "/pfs/{address}/vfs") { request, context, params in
            mutation(request, context) { caller in
                let address = try pciAddress(params["address"])
                let body = try JSONBody.decode(VFCountRequest.self, from: request.body)
                return try await respond(request, caller: caller, kind: "pf.vfs.set", target: address.description) {
                    let outcome = try await VFCountService(core: core).setVFCount(
                        pf: address, count: body.count, autoprobe: body.driversAutoprobe, caller: caller)
                    let detail = PFDetail(
                        pf: outcome.detail.pf, vfs: try vfViews(outcome.detail.vfs), change: outcome.change)
                    return JSONBody.ok(detail, status: outcome.changed ? .created : .ok)
                }
            }
        }
        router.add(.DELETE, "/pfs/{address}/vfs") { request, context, params in
            mutation(request, context) { caller in
                let address = try pciAddress(params["address"])
                return try await respond(request, caller: caller, kind: "pf.vfs.set", target: address.description) {
                    _ = try await VFCountService(core: core).setVFCount(
                        pf: address, count: 0, autoprobe: nil, caller: caller)
                    return HTTPResponse(status: .noContent, headers: HTTPHeaders(), body: [])
                }
            }
        }
    }

    /// `/vfs`, and one VF's settings.
    private func addVFRoutes(to router: inout Router) {
        router.add(.GET, "/vfs") { request, _, _ in answer(request) { try listAllVFs(request) } }
        router.add(.GET, "/vfs/{address}") { request, _, params in
            // Deferred: it asks the kernel for the VF's settings (never through the PF's write queue).
            read(request) { try await vfDetail(pciAddress(params["address"])) }
        }
        router.add(.PATCH, "/vfs/{address}") { request, context, params in
            mutation(request, context) { caller in
                let address = try pciAddress(params["address"])
                let body = try JSONBody.decode(VFConfigRequest.self, from: request.body)
                _ = try await VFSettingsService(core: core).update(vf: address, config: body.config, caller: caller)
                return try await vfDetail(address)
            }
        }
    }

    /// `/allocations` and one allocation.
    private func addAllocationRoutes(to router: inout Router) {
        router.add(.POST, "/allocations") { request, context, _ in
            mutation(request, context) { caller in try await createAllocation(request, caller: caller) }
        }
        router.add(.GET, "/allocations") { request, _, _ in answer(request) { try listAllocations(request) } }
        router.add(.GET, "/allocations/{id}") { request, _, params in
            answer(request) {
                let id = params["id"] ?? ""
                guard let allocation = try read({ try $0.allocation(id: id) }) else {
                    throw SRIOVError.allocationNotFound(id)
                }
                return JSONBody.ok(view(allocation))
            }
        }
        router.add(.PATCH, "/allocations/{id}") { request, context, params in
            mutation(request, context) { caller in
                let body = try JSONBody.decode(VFConfigRequest.self, from: request.body)
                let updated = try await AllocationService(core: core).update(
                    id: params["id"] ?? "", config: body.config, caller: caller)
                return JSONBody.ok(view(updated))
            }
        }
        router.add(.DELETE, "/allocations/{id}") { request, context, params in
            mutation(request, context) { caller in
                let generation = try request.queryValue("generation").map { text throws(SRIOVError) -> Int in
                    guard let value = Int(text), value >= 1 else {
                        throw .invalidParameter("generation", "must be a whole number from 1")
                    }
                    return value
                }
                try await AllocationService(core: core).release(
                    id: params["id"] ?? "", generation: generation, caller: caller)
                return HTTPResponse(status: .noContent, headers: HTTPHeaders(), body: [])
            }
        }
    }

    /// `/audit` and `/reconcile`.
    private func addAuditAndReconcileRoutes(to router: inout Router) {
        router.add(.GET, "/audit") { request, _, _ in
            switch request.queryValue("format") ?? "json" {
            case "json": answer(request) { try listAudit(request) }
            case "ndjson": exportAudit(request)
            default:
                .response(
                    SRIOVError.invalidParameter("format", "must be json (pages) or ndjson (the whole range, streamed)")
                        .response(instance: request.path))
            }
        }
        router.add(.GET, "/reconcile") { request, _, _ in
            answer(request) {
                guard let report = core.reconcileState.lastReport else { throw SRIOVError.notReady }
                return JSONBody.ok(report)
            }
        }
        router.add(.POST, "/reconcile") { request, context, _ in
            mutation(request, context) { caller in
                let dryRun: Bool
                switch request.queryValue("dry_run") {
                case nil, "false": dryRun = false
                case "true": dryRun = true
                default: throw SRIOVError.invalidParameter("dry_run", "must be true or false")
                }
                return try await respond(request, caller: caller, kind: "reconcile.run", target: "host") {
                    let report = try await Reconciler(core: core, restore: core.reconcileState.restore).run(
                        dryRun: dryRun, caller: caller)
                    return JSONBody.ok(report)
                }
            }
        }
    }

    // MARK: - Plumbing

    /// A read, answered inline on the event loop: it touches only memory and a store read connection.
    func answer(_ request: HTTPRequest, _ body: () throws -> HTTPResponse) -> HTTPHandlerResult {
        do {
            return .response(try body())
        } catch let error as SRIOVError {
            return .response(error.response(instance: request.path))
        } catch {
            return .response(SRIOVError.storage(String(describing: error)).response(instance: request.path))
        }
    }

    /// A mutation, run off the event loop: it may wait for the store's group commit or the hardware.
    func mutation(
        _ request: HTTPRequest, _ context: RequestContext,
        _ body: @escaping @Sendable (Caller) async throws -> HTTPResponse
    ) -> HTTPHandlerResult {
        let caller = Caller(actor: context.peer, requestID: context.requestID)
        let ready = readiness.isReady
        return .deferred {
            do {
                guard ready else { throw SRIOVError.notReady }
                return try await body(caller)
            } catch let error as SRIOVError {
                return error.response(instance: request.path)
            } catch {
                return SRIOVError.storage(String(describing: error)).response(instance: request.path)
            }
        }
    }

    /// A read that must leave the event loop because it asks the kernel.
    func read(_ request: HTTPRequest, _ body: @escaping @Sendable () async throws -> HTTPResponse)
        -> HTTPHandlerResult
    {
        .deferred {
            do {
                return try await body()
            } catch let error as SRIOVError {
                return error.response(instance: request.path)
            } catch {
                return SRIOVError.storage(String(describing: error)).response(instance: request.path)
            }
        }
    }

    func read<T>(_ body: (ReadView) throws -> T) throws -> T {
        do {
            return try core.store.read(body)
        } catch StoreError.invalidCursor {
            throw SRIOVError.invalidParameter("cursor", "is not a cursor this server gave out")
        } catch {
            throw SRIOVError.storage(String(describing: error))
        }
    }

    /// A path segment as a PCI address. The segment is percent-decoded first (clients may send `:` as
    /// `%3A`); whatever it decodes to must then be the strict form, so `%2F`, `..` and the like stay 400.
    func pciAddress(_ text: String?) throws(SRIOVError) -> PCIAddress {
        guard let text, let address = PCIAddress(HTTPRequest.percentDecodedPathSegment(text)) else {
            throw .malformedAddress(text ?? "")
        }
        return address
    }

    // MARK: - Inventory

    private func listPFs(_ request: HTTPRequest) throws -> HTTPResponse {
        let snapshot = core.inventory.snapshot
        let vendor = request.queryValue("vendor_id")
        let driver = request.queryValue("driver")
        let numa = try request.queryValue("numa_node").map { text throws(SRIOVError) -> Int in
            guard let value = Int(text), value >= -1 else { throw .invalidParameter("numa_node", "must be an integer") }
            return value
        }
        let maintenance = try read { try $0.maintenance() }
        // The cached list holds no maintenance state: used while no PF is cordoned or managed in part.
        if vendor == nil, driver == nil, numa == nil,
            maintenance.byPF.values.allSatisfy({ !$0.cordoned && $0.managed == nil })
        {
            return .json(.ok, snapshot.pfListJSON { JSONBody.encode(Collection(items: $0.map { PFView(pf: $0) })) })
        }
        let items = snapshot.host.pfs.map(\.pf).filter { pf in
            (vendor == nil || pf.vendorID == vendor) && (driver == nil || pf.driver == driver)
                && (numa == nil || pf.numaNode == numa || (numa == -1 && pf.numaNode == nil))
        }
        return JSONBody.ok(Collection(items: items.map { PFView(pf: $0, maintenance: maintenance[$0.address]) }))
    }

    private func pfDetail(_ address: PCIAddress) throws -> HTTPResponse {
        guard let entry = core.inventory.snapshot.pf(address) else { throw SRIOVError.pfNotFound(address) }
        let maintenance = try read { try $0.maintenance() }[address]
        return JSONBody.ok(PFDetail(pf: entry.pf, vfs: try vfViews(entry.vfs), change: nil, maintenance: maintenance))
    }

    private func listVFs(pf address: PCIAddress) throws -> HTTPResponse {
        guard let entry = core.inventory.snapshot.pf(address) else { throw SRIOVError.pfNotFound(address) }
        return JSONBody.ok(Collection(items: try vfViews(entry.vfs)))
    }

    private func listAllVFs(_ request: HTTPRequest) throws -> HTTPResponse {
        let snapshot = core.inventory.snapshot
        if let text = request.queryValue("pf") {
            guard let pf = PCIAddress(text) else { throw SRIOVError.malformedAddress(text) }
            return JSONBody.ok(Collection(items: try vfViews(snapshot.pf(pf)?.vfs ?? [])))
        }
        return JSONBody.ok(Collection(items: try vfViews(snapshot.allVFs)))
    }

    private func vfDetail(_ address: PCIAddress) async throws -> HTTPResponse {
        guard let (pf, vf) = core.inventory.snapshot.vf(address) else { throw SRIOVError.vfNotFound(address) }
        var detail = try vfViews([vf])[0]
        detail.settings = try? core.vfs.state(of: vf, pf: pf)
        // A fresh reading with the traffic counters, which also refreshes the VF's link state for its health.
        let reading = core.telemetry.refresh(pf: pf, netlink: core.host.netlink)?[vf.index]
        detail.stats = .some(reading?.stats.map(VFStatsView.init))
        detail.health = core.health(of: vf, pf: pf, holder: detail.holder, dirty: core.dirtyVFs.all)
        return JSONBody.ok(detail)
    }

    /// VFs with their holders, from one store read.
    private func vfViews(_ vfs: [VirtualFunction]) throws -> [VFView] {
        guard !vfs.isEmpty else { return [] }
        let pfs = Set(vfs.map(\.pf))
        let (holders, maintenance) = try read { view in
            var byVF: [PCIAddress: Allocation] = [:]
            for pf in pfs { for allocation in try view.holdingAllocations(pf: pf) { byVF[allocation.vf] = allocation } }
            return (byVF, try view.maintenance())
        }
        let snapshot = core.inventory.snapshot
        let dirty = core.dirtyVFs.all
        return vfs.map { vf in
            let holder = holders[vf.address]
            let health =
                snapshot.pf(vf.pf).map { core.health(of: vf, pf: $0.pf, holder: holder, dirty: dirty) } ?? .ok
            var view = VFView(vf: vf, holder: holder, health: health)
            view.external = maintenance.isExternal(pf: vf.pf, vfIndex: vf.index)
            return view
        }
    }

    // MARK: - Allocations

    private func createAllocation(_ request: HTTPRequest, caller: Caller) async throws -> HTTPResponse {
        let body: AllocationRequest
        do {
            body = try JSONBody.decode(AllocationRequest.self, from: request.body)
        } catch {
            try await core.audit(caller.failure("allocation.create", target: "request", error))
            throw error
        }
        var keyed: (key: String, requestHash: String)?
        if let key = request.headers["Idempotency-Key"] {
            guard !key.isEmpty, key.utf8.count <= 255 else {
                throw SRIOVError.invalidParameter("Idempotency-Key", "must be 1 to 255 characters")
            }
            // The same request may arrive with other whitespace or key order: hash its canonical form.
            let canonical = (try? JSONValue.parse(String(decoding: request.body, as: UTF8.self)))?.text ?? ""
            keyed = (key, SHA256.hex(Array("POST /allocations\n\(canonical)".utf8)))
        }
        // Binding a driver is slow: such an allocation may be made as an operation, whose target is the allocation.
        let id = UUID().uuidString.lowercased()
        let binds = body.config?.driver != nil
        let idempotency = keyed
        return try await respond(request, caller: caller, kind: "allocation.create", target: id, allowed: binds) {
            try await allocate(body, id: id, idempotency: idempotency, caller: caller)
        }
    }

    private func allocate(
        _ body: AllocationRequest, id: String, idempotency: (key: String, requestHash: String)?, caller: Caller
    ) async throws -> HTTPResponse {
        let outcome = try await AllocationService(core: core).allocate(
            body, id: id, idempotency: idempotency, caller: caller, render: { JSONBody.encode(view($0)) })
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        switch outcome {
        case .created(let allocation, let bytes):
            headers.add("Location", "/allocations/" + allocation.id)
            return HTTPResponse(status: .created, headers: headers, body: bytes)
        case .replayed(let replay):
            if let location = replay.location { headers.add("Location", location) }
            headers.add("Idempotent-Replayed", "true")
            return HTTPResponse(
                status: HTTPStatus(code: replay.status), headers: headers, body: replay.body)
        }
    }

    private func listAllocations(_ request: HTTPRequest) throws -> HTTPResponse {
        var filter = AllocationFilter()
        switch request.queryValue("state") ?? "active" {
        case "all": filter.state = nil
        case let text:
            guard let state = AllocationState(rawValue: text) else {
                throw SRIOVError.invalidParameter(
                    "state", "must be one of active, released, dirty, orphaned, drifted, all")
            }
            filter.state = state
        }
        filter.owner = request.queryValue("owner")
        if let text = request.queryValue("pf") {
            guard let pf = PCIAddress(text) else { throw SRIOVError.malformedAddress(text) }
            filter.pf = pf
        }
        filter.limit = try limit(request)
        filter.cursor = request.queryValue("cursor").flatMap { $0.isEmpty ? nil : $0 }
        let page = try read { try $0.allocations(filter) }
        return JSONBody.ok(Collection(items: page.items.map(view), next: page.next))
    }

    /// An allocation with its VF's device details from the inventory.
    func view(_ allocation: Allocation) -> AllocationView {
        let vf = core.inventory.snapshot.vf(allocation.vf)?.vf
        return AllocationView(allocation: allocation, vf: vf?.index == allocation.vfIndex ? vf : nil)
    }

    private func listAudit(_ request: HTTPRequest) throws -> HTTPResponse {
        var filter = try auditFilter(request)
        filter.limit = try limit(request)
        let events = try read { try $0.auditEvents(filter) }
        let next = events.count == filter.limit ? events.last.map { String($0.id) } : nil
        return JSONBody.ok(Collection(items: events.map(AuditEventView.init), next: next))
    }

    /// The audit query's filters: target, action, actor, since, until, after.
    func auditFilter(_ request: HTTPRequest) throws(SRIOVError) -> AuditFilter {
        var filter = AuditFilter()
        filter.target = request.queryValue("target")
        filter.action = request.queryValue("action")
        filter.actor = request.queryValue("actor")
        for (name, keyPath) in [("since", \AuditFilter.since), ("until", \AuditFilter.until)] {
            if let text = request.queryValue(name) {
                guard let normalized = Timestamp.normalize(text) else {
                    throw SRIOVError.invalidParameter(
                        name, "must be an RFC 3339 date-time such as 2026-11-25T09:00:00Z")
                }
                filter[keyPath: keyPath] = normalized
            }
        }
        if let text = request.queryValue("after") {
            guard let after = Int64(text), after >= 0 else {
                throw SRIOVError.invalidParameter("after", "must be an event id (a non-negative integer)")
            }
            filter.after = after
        }
        return filter
    }

    func limit(_ request: HTTPRequest) throws(SRIOVError) -> Int {
        guard let text = request.queryValue("limit") else { return 100 }
        guard let value = Int(text), (1...500).contains(value) else {
            throw .invalidParameter("limit", "must be an integer from 1 to 500")
        }
        return value
    }
}
