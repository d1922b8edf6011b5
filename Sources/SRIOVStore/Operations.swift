import SRIOVCore

/// An asynchronous operation: a request answered 202 at once and carried out meanwhile.
public struct OperationRecord: Hashable, Sendable {
    public enum State: String, Hashable, Sendable, CaseIterable {
        case queued
        case running
        case succeeded
        case failed

        public var isFinished: Bool { self == .succeeded || self == .failed }
    }

    public var id: String
    /// `pf.vfs.set`, `reconcile.run`, `allocation.create`.
    public var kind: String
    /// A PF address, `host`, or the id of the allocation it creates.
    public var target: String
    public var state: State
    /// The request as the API took it (JSON text).
    public var request: String
    /// How far it has come, where known (JSON text).
    public var progress: String?
    /// On success, the body the synchronous call would have answered (JSON text).
    public var result: String?
    /// On failure, the problem the synchronous call would have answered (JSON text).
    public var problem: String?
    public var actor: String
    public var requestID: String?
    public var createdAt: String
    public var startedAt: String?
    public var finishedAt: String?

    public init(
        id: String, kind: String, target: String, state: State = .queued, request: String, progress: String? = nil,
        result: String? = nil, problem: String? = nil, actor: String, requestID: String?, createdAt: String,
        startedAt: String? = nil, finishedAt: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.target = target
        self.state = state
        self.request = request
        self.progress = progress
        self.result = result
        self.problem = problem
        self.actor = actor
        self.requestID = requestID
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// Which operations to list, oldest first.
public struct OperationFilter: Hashable, Sendable {
    public static let maximumLimit = 500

    public var state: OperationRecord.State?
    public var kind: String?
    /// The `next` of the previous page.
    public var cursor: String?
    public var limit: Int

    public init(state: OperationRecord.State? = nil, kind: String? = nil, cursor: String? = nil, limit: Int = 100) {
        self.state = state
        self.kind = kind
        self.cursor = cursor
        self.limit = limit
    }
}

private let operationColumns =
    "rowid, id, kind, target, state, request, progress, result, problem, actor, request_id, created_at, started_at, "
    + "finished_at"

extension Database {
    func operation(id: String) throws(StoreError) -> OperationRecord? {
        try queryFirst("SELECT \(operationColumns) FROM operations WHERE id = ?", [id]) { row throws(StoreError) in
            try decodeOperation(row)
        }
    }

    func operations(_ filter: OperationFilter) throws(StoreError) -> (items: [OperationRecord], next: String?) {
        var conditions = Conditions()
        conditions.equal("state", filter.state?.rawValue)
        conditions.equal("kind", filter.kind)
        try conditions.after("rowid", cursor: filter.cursor)
        return try page(
            "SELECT \(operationColumns) FROM operations", conditions, order: "rowid",
            limit: min(max(filter.limit, 1), OperationFilter.maximumLimit)
        ) { row throws(StoreError) in try decodeOperation(row) }
    }

    func unfinishedOperations() throws(StoreError) -> [OperationRecord] {
        try query("SELECT \(operationColumns) FROM operations WHERE finished_at IS NULL ORDER BY rowid") {
            row throws(StoreError) in try decodeOperation(row)
        }
    }

    func insertOperation(_ operation: OperationRecord) throws(StoreError) {
        try execute(
            """
            INSERT INTO operations (id, kind, target, state, request, progress, result, problem, actor, request_id,
                                    created_at, started_at, finished_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, operation.id, operation.kind, operation.target, operation.state.rawValue, operation.request,
            operation.progress, operation.result, operation.problem, operation.actor, operation.requestID,
            operation.createdAt, operation.startedAt, operation.finishedAt)
    }

    /// Replaces the mutable fields of the operation with `operation`'s. Throws when there is none with its id.
    func updateOperation(_ operation: OperationRecord) throws(StoreError) {
        try execute(
            """
            UPDATE operations SET target = ?, state = ?, progress = ?, result = ?, problem = ?, started_at = ?,
                                  finished_at = ?
            WHERE id = ?
            """, operation.target, operation.state.rawValue, operation.progress, operation.result, operation.problem,
            operation.startedAt, operation.finishedAt, operation.id)
        guard changes == 1 else { throw .corruptData("operation \(operation.id) does not exist") }
    }

    private func decodeOperation(_ row: Row) throws(StoreError) -> OperationRecord {
        guard let state = OperationRecord.State(rawValue: row.text(4)) else {
            throw .corruptData("operations.state '\(row.text(4))'")
        }
        return OperationRecord(
            id: row.text(1), kind: row.text(2), target: row.text(3), state: state, request: row.text(5),
            progress: row.optionalText(6), result: row.optionalText(7), problem: row.optionalText(8),
            actor: row.text(9), requestID: row.optionalText(10), createdAt: row.text(11),
            startedAt: row.optionalText(12), finishedAt: row.optionalText(13))
    }
}

extension StoreView {
    public func operation(id: String) throws(StoreError) -> OperationRecord? { try connection().operation(id: id) }

    /// A page of operations, oldest first, and the cursor of the next page (nil on the last).
    public func operations(_ filter: OperationFilter) throws(StoreError) -> (items: [OperationRecord], next: String?) {
        try connection().operations(filter)
    }

    /// Operations not finished, oldest first: at startup, those a crash cut off.
    public func unfinishedOperations() throws(StoreError) -> [OperationRecord] {
        try connection().unfinishedOperations()
    }
}

extension Transaction {
    public func insertOperation(_ operation: OperationRecord) throws(StoreError) {
        try connection().insertOperation(operation)
    }

    public func updateOperation(_ operation: OperationRecord) throws(StoreError) {
        try connection().updateOperation(operation)
    }
}
