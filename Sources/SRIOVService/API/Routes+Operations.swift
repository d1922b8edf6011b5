import FoundationEssentials
import HTTPServer
import SRIOVCore
import SRIOVStore

/// Asynchronous operations: `Prefer: respond-async` (RFC 7240) on slow requests, `GET /operations` and
/// `GET /operations/{id}` with a long poll.
extension SRIOVAPI {
    /// The longest `?wait=` a client may ask for.
    static let maximumWait = 60

    func addAsyncOperationRoutes(to router: inout Router) {
        router.add(.GET, "/operations") { request, _, _ in
            answer(request) { try listOperations(request) }
        }
        router.add(.GET, "/operations/{id}") { request, _, params in
            let id = params["id"] ?? ""
            return read(request) {
                let wait = try waitParameter(request)
                guard let record = try await operations.wait(for: id, timeout: .seconds(wait)) else {
                    throw SRIOVError.operationNotFound(id)
                }
                return JSONBody.ok(Self.view(record))
            }
        }
    }

    /// Runs `work` now, or, when the request prefers `respond-async` and `allowed`, as an operation: 202 Accepted
    /// with `Location: /operations/{id}` and the operation as body. An Idempotency-Key replays the same operation.
    func respond(
        _ request: HTTPRequest, caller: Caller, kind: String, target: String, allowed: Bool = true,
        id: String = UUID().uuidString.lowercased(), _ work: @escaping @Sendable () async throws -> HTTPResponse
    ) async throws -> HTTPResponse {
        guard allowed, Self.prefersAsync(request) else { return try await work() }
        let path = request.path
        let (record, replayed) = try await operations.start(
            kind: kind, target: target, request: Self.requestDocument(request), caller: caller, id: id,
            idempotency: idempotency(of: request), replay: { JSONBody.encode(Self.view($0)) },
            work: { await Self.outcome(path: path, work) })
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        headers.add("Location", "/operations/" + record.id)
        headers.add("Preference-Applied", "respond-async")
        if replayed { headers.add("Idempotent-Replayed", "true") }
        return HTTPResponse(status: .accepted, headers: headers, body: JSONBody.encode(Self.view(record)))
    }

    /// True when the `Prefer` header (RFC 7240 §2) holds the `respond-async` preference.
    static func prefersAsync(_ request: HTTPRequest) -> Bool {
        request.headers.listElements(for: "Prefer").contains { preference in
            preference == "respond-async" || preference.hasPrefix("respond-async;")
                || preference.hasPrefix("respond-async ")
        }
    }

    /// The answer the synchronous call gives, as an operation's outcome.
    private static func outcome(path: String, _ work: @Sendable () async throws -> HTTPResponse) async
        -> OperationRunner.Outcome
    {
        let response: HTTPResponse
        do {
            response = try await work()
        } catch let error as SRIOVError {
            response = error.response(instance: path)
        } catch {
            response = SRIOVError.storage(String(describing: error)).response(instance: path)
        }
        return OperationRunner.Outcome(status: response.status.code, body: response.body.isEmpty ? nil : response.body)
    }

    /// The request as the operation keeps it: method, path, and the JSON body if any.
    private static func requestDocument(_ request: HTTPRequest) -> JSONValue {
        let body = request.body.isEmpty ? nil : try? JSONValue.parse(String(decoding: request.body, as: UTF8.self))
        return .object([
            "method": .string(request.method.rawValue), "path": .string(request.target),
            "body": body ?? .null,
        ])
    }

    private func idempotency(of request: HTTPRequest) -> (key: String, requestHash: String)? {
        guard let key = request.headers["Idempotency-Key"], !key.isEmpty, key.utf8.count <= 255 else { return nil }
        let canonical = (try? JSONValue.parse(String(decoding: request.body, as: UTF8.self)))?.text ?? ""
        return (key, SHA256.hex(Array("\(request.method.rawValue) \(request.path)\n\(canonical)".utf8)))
    }

    private func waitParameter(_ request: HTTPRequest) throws(SRIOVError) -> Int {
        guard let text = request.queryValue("wait") else { return 0 }
        guard let seconds = Int(text), (0...Self.maximumWait).contains(seconds) else {
            throw .invalidParameter("wait", "must be a whole number of seconds from 0 to \(Self.maximumWait)")
        }
        return seconds
    }

    private func listOperations(_ request: HTTPRequest) throws -> HTTPResponse {
        // An empty cursor is the first page, as an absent one.
        let cursor = request.queryValue("cursor").flatMap { $0.isEmpty ? nil : $0 }
        var filter = OperationFilter(kind: request.queryValue("kind"), cursor: cursor)
        if let text = request.queryValue("state") {
            guard let state = OperationRecord.State(rawValue: text) else {
                throw SRIOVError.invalidParameter("state", "must be one of queued, running, succeeded, failed")
            }
            filter.state = state
        }
        if let text = request.queryValue("limit") {
            guard let limit = Int(text), (1...OperationFilter.maximumLimit).contains(limit) else {
                throw SRIOVError.invalidParameter("limit", "must be from 1 to \(OperationFilter.maximumLimit)")
            }
            filter.limit = limit
        }
        let page = try read { try $0.operations(filter) }
        return JSONBody.ok(
            JSONValue.object([
                "items": .array(page.items.map(Self.view)), "next": page.next.map(JSONValue.string) ?? .null,
            ]))
    }

    /// An operation as the API shows it.
    static func view(_ record: OperationRecord) -> JSONValue {
        func json(_ text: String?) -> JSONValue { text.flatMap { try? JSONValue.parse($0) } ?? .null }
        return .object([
            "id": .string(record.id), "kind": .string(record.kind), "target": .string(record.target),
            "state": .string(record.state.rawValue), "request": json(record.request),
            "progress": json(record.progress), "result": json(record.result), "problem": json(record.problem),
            "actor": .string(record.actor), "request_id": record.requestID.map(JSONValue.string) ?? .null,
            "created_at": .string(record.createdAt), "started_at": record.startedAt.map(JSONValue.string) ?? .null,
            "finished_at": record.finishedAt.map(JSONValue.string) ?? .null,
            "location": .string("/operations/" + record.id),
        ])
    }
}

extension SRIOVAPI {
    /// At startup, after reconciliation: every operation a crash cut off ends truthfully, `succeeded` when the
    /// hardware (or the store) shows it done, else `failed` with an `interrupted` problem.
    public func settleInterruptedOperations() async {
        let unfinished: [OperationRecord]
        do { unfinished = try core.store.read { try $0.unfinishedOperations() } } catch {
            core.logger.error("could not read unfinished operations", metadata: ["error": "\(error)"])
            return
        }
        for var record in unfinished {
            record.finishedAt = Timestamp.now()
            if record.startedAt == nil { record.startedAt = record.finishedAt }
            if let result = settledResult(record) {
                record.state = .succeeded
                record.result = result.text
            } else {
                record.state = .failed
                let why = "operation \(record.id) (\(record.kind) on \(record.target))"
                record.problem = String(
                    decoding: SRIOVError.interrupted(why).response(instance: "/operations/" + record.id).body,
                    as: UTF8.self)
            }
            await operations.save(record, caller: .reconciler)
        }
    }

    /// What the operation would have answered, when what it asked for is there now.
    private func settledResult(_ record: OperationRecord) -> JSONValue? {
        let request = (try? JSONValue.parse(record.request)) ?? .null
        switch record.kind {
        case "pf.vfs.set":
            let wanted: Int? =
                request["method"]?.string == "DELETE"
                ? 0
                : { if case .int(let n)? = $0 { n } else { nil } }(
                    request["body"]?["count"])
            guard let pf = PCIAddress(record.target), let wanted, let entry = core.inventory.snapshot.pf(pf),
                entry.pf.numVFs == wanted
            else { return nil }
            return .object([
                "pf": .string(pf.description), "num_vfs": .int(wanted), "settled_after_restart": .bool(true),
            ])
        case "allocation.create":
            guard let allocation = try? core.store.read({ try $0.allocation(id: record.target) }),
                allocation.state == .active
            else { return nil }
            return (try? JSONValue.parse(String(decoding: JSONBody.encode(view(allocation)), as: UTF8.self)))
        default:
            return nil
        }
    }
}
