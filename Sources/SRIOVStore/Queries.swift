import FoundationEssentials
import Glibc
import SRIOVCore

// The SQL of the store, shared by `ReadView` and `Transaction`, which forward to it.

private let allocationColumns =
    "seq, id, vf, pf, vf_index, owner, labels, state, created_at, released_at, config, generation, lease_seconds, "
    + "expires_at, placement, attachment_netns, attachment_ifname, attachment_original_ifname, "
    + "attachment_original_mtu, attachment_original_mac, attachment_at"
private let auditColumns = "id, at, actor, action, target, outcome, error, request_id, details"
private let intentColumns = "id, kind, target, payload, created_at, completed_at, outcome"

extension Database {
    // MARK: Reading

    func allocation(id: String) throws(StoreError) -> Allocation? {
        try queryFirst("SELECT \(allocationColumns) FROM allocations WHERE id = ?", [id]) { row throws(StoreError) in
            try decodeAllocation(row)
        }
    }

    func allocations(_ filter: AllocationFilter) throws(StoreError) -> AllocationPage {
        var conditions = Conditions()
        conditions.equal("state", filter.state?.rawValue)
        conditions.equal("owner", filter.owner)
        conditions.equal("pf", filter.pf?.description)
        try conditions.after("seq", cursor: filter.cursor)
        let page = try self.page(
            "SELECT \(allocationColumns) FROM allocations", conditions, order: "seq",
            limit: min(max(filter.limit, 1), AllocationFilter.maximumLimit)
        ) { row throws(StoreError) in try decodeAllocation(row) }
        return AllocationPage(items: page.items, next: page.next)
    }

    /// One page of `select`'s rows matching `conditions`, ordered by `order` (an integer column whose last value is
    /// the next page's cursor, selected first), and that cursor; nil on the last page.
    func page<T>(
        _ select: String, _ conditions: Conditions, order: String, limit: Int,
        decode: (Row) throws(StoreError) -> T
    ) throws(StoreError) -> (items: [T], next: String?) {
        let rows = try query(
            "\(select)\(conditions.whereClause) ORDER BY \(order) LIMIT ?", conditions.arguments + [limit + 1]
        ) { row throws(StoreError) in (key: row.int64(0), item: try decode(row)) }
        guard rows.count > limit else { return (rows.map(\.item), nil) }
        let page = rows.prefix(limit)
        return (page.map(\.item), String(page.last!.key))
    }

    func holdingAllocations(pf: PCIAddress) throws(StoreError) -> [Allocation] {
        try query(
            "SELECT \(allocationColumns) FROM allocations WHERE pf = ? AND state <> 'released' ORDER BY seq",
            [pf.description]
        ) { row throws(StoreError) in try decodeAllocation(row) }
    }

    func holdingAllocation(vf: PCIAddress) throws(StoreError) -> Allocation? {
        try queryFirst(
            "SELECT \(allocationColumns) FROM allocations WHERE vf = ? AND state <> 'released'", [vf.description]
        ) { row throws(StoreError) in try decodeAllocation(row) }
    }

    func heldVFs() throws(StoreError) -> Set<PCIAddress> {
        Set(
            try query("SELECT vf FROM allocations WHERE state <> 'released'") { row throws(StoreError) in
                try address(row, 0, "allocations.vf")
            })
    }

    func auditIDRange() throws(StoreError) -> (first: Int64, last: Int64)? {
        try queryFirst("SELECT min(id), max(id) FROM audit_events") { row -> (first: Int64, last: Int64)? in
            row.optionalText(0) == nil ? nil : (row.int64(0), row.int64(1))
        } ?? nil
    }

    func auditEvents(_ filter: AuditFilter) throws(StoreError) -> [AuditEvent] {
        var conditions: [String] = []
        var arguments: [(any SQLBindable)?] = []
        for (column, value) in [("target", filter.target), ("action", filter.action), ("actor", filter.actor)] {
            if let value {
                conditions.append("\(column) = ?")
                arguments.append(value)
            }
        }
        // Stored times are canonical; bring the bounds to the same form so text order is time order.
        if let since = filter.since {
            conditions.append("at >= ?")
            arguments.append(Timestamp.normalize(since) ?? since)
        }
        if let until = filter.until {
            conditions.append("at <= ?")
            arguments.append(Timestamp.normalize(until) ?? until)
        }
        if let after = filter.after {
            conditions.append("id > ?")
            arguments.append(after)
        }
        arguments.append(min(max(filter.limit, 1), AuditFilter.maximumLimit))
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try query(
            "SELECT \(auditColumns) FROM audit_events\(whereClause) ORDER BY id LIMIT ?", arguments
        ) { row throws(StoreError) in
            guard let outcome = AuditEvent.Outcome(rawValue: row.text(5)) else {
                throw .corruptData("audit_events.outcome '\(row.text(5))'")
            }
            return AuditEvent(
                id: row.int64(0), at: row.text(1), actor: row.text(2), action: row.text(3), target: row.text(4),
                outcome: outcome, error: row.optionalText(6), requestID: row.optionalText(7), details: row.text(8))
        }
    }

    func storedPFs() throws(StoreError) -> [StoredPF] {
        try query(
            "SELECT address, vendor_id, device_id, desired_vfs, first_seen, last_seen FROM pfs ORDER BY address"
        ) { row throws(StoreError) in
            StoredPF(
                address: try address(row, 0, "pfs.address"), vendorID: row.text(1), deviceID: row.text(2),
                desiredVFs: row.optionalInt(3), firstSeen: row.text(4), lastSeen: row.text(5))
        }
    }

    func desiredVFs(pf: PCIAddress) throws(StoreError) -> Int? {
        try queryFirst("SELECT desired_vfs FROM pfs WHERE address = ?", [pf.description]) { $0.optionalInt(0) }
            ?? nil
    }

    func idempotencyRecord(key: String) throws(StoreError) -> IdempotencyRecord? {
        try queryFirst(
            """
            SELECT key, request_hash, status, response_headers, response_body, created_at
            FROM idempotency_keys WHERE key = ?
            """, [key]
        ) { row throws(StoreError) in
            let pairs: [[String]] = try decodeJSON(row.text(3), "idempotency_keys.response_headers")
            var location: String?
            var headers: [IdempotencyRecord.Header] = []
            for pair in pairs {
                guard pair.count == 2 else { throw .corruptData("idempotency_keys.response_headers") }
                if location == nil && pair[0] == "Location" {
                    location = pair[1]
                } else {
                    headers.append(IdempotencyRecord.Header(name: pair[0], value: pair[1]))
                }
            }
            return IdempotencyRecord(
                key: row.text(0), requestHash: row.text(1), status: row.int(2), body: row.blob(4),
                location: location, headers: headers, createdAt: row.text(5))
        }
    }

    func openIntents() throws(StoreError) -> [Intent] {
        try query("SELECT \(intentColumns) FROM intents WHERE completed_at IS NULL ORDER BY id") {
            row throws(StoreError) in try decodeIntent(row)
        }
    }

    func hasOpenIntent(kind: IntentKind, target: String) throws(StoreError) -> Bool {
        try queryFirst(
            "SELECT 1 FROM intents WHERE completed_at IS NULL AND kind = ? AND target = ? LIMIT 1",
            [kind.rawValue, target]
        ) { _ in true } ?? false
    }

    func intent(id: Int64) throws(StoreError) -> Intent? {
        try queryFirst("SELECT \(intentColumns) FROM intents WHERE id = ?", [id]) { row throws(StoreError) in
            try decodeIntent(row)
        }
    }

    func originalState(vf: PCIAddress) throws(StoreError) -> String? {
        try queryFirst("SELECT settings FROM vf_original_state WHERE vf = ?", [vf.description]) { $0.text(0) }
    }

    // MARK: Writing

    func insertAllocation(_ allocation: Allocation) throws(StoreError) {
        let labels = allocation.labels.isEmpty ? "{}" : try encodeJSON(allocation.labels)
        let config = try allocation.config.map { config throws(StoreError) in try encodeJSON(config) }
        let placement = allocation.placement.map(Self.placementJSON)
        do {
            try execute(
                """
                INSERT INTO allocations (id, vf, pf, vf_index, owner, labels, state, created_at, released_at,
                                         config, generation, lease_seconds, expires_at, placement)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, allocation.id, allocation.vf.description, allocation.pf.description, allocation.vfIndex,
                allocation.owner, labels, allocation.state.rawValue, allocation.createdAt, allocation.releasedAt,
                config, allocation.generation, allocation.leaseSeconds, allocation.expiresAt, placement)
        } catch {
            throw heldError(error, vf: allocation.vf)
        }
    }

    func nextGeneration(vf: PCIAddress) throws(StoreError) -> Int {
        try queryFirst(
            """
            INSERT INTO vf_generations (vf, generation) VALUES (?, 1)
            ON CONFLICT (vf) DO UPDATE SET generation = generation + 1
            RETURNING generation
            """, [vf.description]
        ) { $0.int(0) } ?? 1
    }

    func updateAllocation(id: String, state: AllocationState, releasedAt: String?) throws(StoreError) {
        do {
            try execute(
                "UPDATE allocations SET state = ?, released_at = ? WHERE id = ?", state.rawValue, releasedAt, id)
        } catch {
            guard let vf = try? allocation(id: id)?.vf else { throw error }
            throw heldError(error, vf: vf)
        }
        guard changes == 1 else { throw .allocationNotFound(id) }
    }

    /// Records (or, with nil, clears) where the allocation's netdev went.
    func updateAllocationAttachment(id: String, attachment: Attachment?) throws(StoreError) {
        try execute(
            """
            UPDATE allocations SET attachment_netns = ?, attachment_ifname = ?, attachment_original_ifname = ?,
                attachment_original_mtu = ?, attachment_original_mac = ?, attachment_at = ?
            WHERE id = ?
            """, attachment?.netns, attachment?.ifname, attachment?.originalIfname, attachment?.originalMTU,
            attachment?.originalMAC, attachment?.attachedAt, id)
        guard changes == 1 else { throw .allocationNotFound(id) }
    }

    func updateAllocationConfig(id: String, config: VFConfig?) throws(StoreError) {
        let text = try config.map { config throws(StoreError) in try encodeJSON(config) }
        try execute("UPDATE allocations SET config = ? WHERE id = ?", text, id)
        guard changes == 1 else { throw .allocationNotFound(id) }
    }

    func appendAudit(_ event: AuditEvent) throws(StoreError) -> Int64 {
        try queryFirst(
            """
            INSERT INTO audit_events (at, actor, action, target, outcome, error, request_id, details)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
            """,
            [
                event.at, event.actor, event.action, event.target, event.outcome.rawValue, event.error,
                event.requestID, event.details,
            ]
        ) { $0.int64(0) } ?? 0
    }

    func setDesiredVFs(pf: PCIAddress, _ count: Int?) throws(StoreError) {
        try execute("UPDATE pfs SET desired_vfs = ? WHERE address = ?", count, pf.description)
        guard changes == 1 else { throw .unknownPF(pf) }
    }

    func recordInventory(_ snapshot: HostSnapshot, seenAt: String) throws(StoreError) {
        for entry in snapshot.pfs {
            try execute(
                """
                INSERT INTO pfs (address, vendor_id, device_id, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (address) DO UPDATE SET vendor_id = excluded.vendor_id,
                    device_id = excluded.device_id, last_seen = excluded.last_seen
                """, entry.pf.address.description, entry.pf.vendorID, entry.pf.deviceID, seenAt, seenAt)
            for vf in entry.vfs {
                try execute(
                    """
                    INSERT INTO vfs (address, pf, vf_index, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (address) DO UPDATE SET pf = excluded.pf, vf_index = excluded.vf_index,
                        last_seen = excluded.last_seen
                    """, vf.address.description, vf.pf.description, vf.index, seenAt, seenAt)
            }
        }
    }

    func putIdempotencyRecord(_ record: IdempotencyRecord) throws(StoreError) {
        // Stored as one list of [name, value] pairs, `Location` first.
        let pairs = (record.location.map { [["Location", $0]] } ?? []) + record.headers.map { [$0.name, $0.value] }
        let headers = try encodeJSON(pairs)
        try execute(
            """
            INSERT INTO idempotency_keys (key, request_hash, status, response_headers, response_body, created_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status,
                response_headers = excluded.response_headers, response_body = excluded.response_body,
                created_at = excluded.created_at
            """, record.key, record.requestHash, record.status, headers, record.body, record.createdAt)
    }

    func purgeIdempotencyRecords(createdBefore cutoff: String) throws(StoreError) -> Int {
        try execute("DELETE FROM idempotency_keys WHERE created_at < ?", cutoff)
        return changes
    }

    func beginIntent(kind: IntentKind, target: String, payload: String, at: String) throws(StoreError) -> Int64 {
        try queryFirst(
            "INSERT INTO intents (kind, target, payload, created_at) VALUES (?, ?, ?, ?) RETURNING id",
            [kind.rawValue, target, payload, at]
        ) { $0.int64(0) } ?? 0
    }

    func completeIntent(_ id: Int64, outcome: Intent.Outcome, at: String) throws(StoreError) {
        try execute(
            "UPDATE intents SET completed_at = ?, outcome = ? WHERE id = ? AND completed_at IS NULL", at,
            outcome.rawValue, id)
        guard changes == 1 else { throw .corruptData("intent \(id) does not exist or is already complete") }
    }

    func saveOriginalState(vf: PCIAddress, json: String, at: String) throws(StoreError) -> Bool {
        try execute(
            "INSERT INTO vf_original_state (vf, settings, captured_at) VALUES (?, ?, ?) ON CONFLICT (vf) DO NOTHING",
            vf.description, json, at)
        return changes == 1
    }

    func clearOriginalState(vf: PCIAddress) throws(StoreError) {
        try execute("DELETE FROM vf_original_state WHERE vf = ?", vf.description)
    }

    // MARK: Decoding and encoding

    /// A placement reason as JSON text, written directly: it is stored with every new allocation, on the writer.
    static func placementJSON(_ placement: PlacementReason) -> String {
        var text = #"{"avoided_pfs":["#
        text += placement.avoidedPFs.map { "\"\($0)\"" }.joined(separator: ",")
        text += #"],"numa_node":"# + (placement.numaNode.map(String.init) ?? "null") + #","reason":"#
        placement.reason.appendQuoted(to: &text)
        text += #","rule":"#
        placement.rule.appendQuoted(to: &text)
        return text + "}"
    }

    private func decodeAllocation(_ row: Row) throws(StoreError) -> Allocation {
        guard let state = AllocationState(rawValue: row.text(7)) else {
            throw .corruptData("allocations.state '\(row.text(7))'")
        }
        let labelsText = row.text(6)
        let labels: [String: String] =
            labelsText == "{}" ? [:] : try decodeJSON(labelsText, "allocations.labels")
        let config: VFConfig? =
            row.isNull(10) ? nil : try decodeJSON(row.text(10), "allocations.config") as VFConfig
        let placement: PlacementReason? =
            row.isNull(14) ? nil : try decodeJSON(row.text(14), "allocations.placement") as PlacementReason
        var attachment: Attachment?
        if let netns = row.optionalText(15) {
            attachment = Attachment(
                netns: netns, ifname: row.text(16), originalIfname: row.text(17), originalMTU: row.int(18),
                originalMAC: row.optionalText(19), attachedAt: row.text(20))
        }
        return Allocation(
            id: row.text(1), vf: try address(row, 2, "allocations.vf"), pf: try address(row, 3, "allocations.pf"),
            vfIndex: row.int(4), owner: row.text(5), labels: labels, state: state, createdAt: row.text(8),
            releasedAt: row.optionalText(9), config: config, generation: row.int(11),
            leaseSeconds: row.optionalInt(12), expiresAt: row.optionalText(13), placement: placement,
            attachment: attachment)
    }

    private func decodeIntent(_ row: Row) throws(StoreError) -> Intent {
        var outcome: Intent.Outcome?
        if let text = row.optionalText(6) {
            guard let value = Intent.Outcome(rawValue: text) else { throw .corruptData("intents.outcome '\(text)'") }
            outcome = value
        }
        guard let kind = IntentKind(rawValue: row.text(1)) else { throw .corruptData("intents.kind '\(row.text(1))'") }
        return Intent(
            id: row.int64(0), kind: kind, target: row.text(2), payload: row.text(3), createdAt: row.text(4),
            completedAt: row.optionalText(5), outcome: outcome)
    }

    private func address(_ row: Row, _ column: Int32, _ name: String) throws(StoreError) -> PCIAddress {
        guard let address = PCIAddress(row.text(column)) else {
            throw .corruptData("\(name) '\(row.text(column))' is not a PCI address")
        }
        return address
    }

    private func decodeJSON<T: Decodable>(_ text: String, _ column: String) throws(StoreError) -> T {
        do {
            return try jsonDecoder.decode(T.self, from: Data(text.utf8))
        } catch {
            throw .corruptData("\(column): \(error)")
        }
    }

    private func encodeJSON(_ value: some Encodable) throws(StoreError) -> String {
        do {
            return String(decoding: try jsonEncoder.encode(value), as: UTF8.self)
        } catch {
            throw .corruptData("cannot encode \(type(of: value)) as JSON: \(error)")
        }
    }

    /// The double-allocation guard speaks as `.vfAlreadyHeld`; other errors pass through.
    func heldError(_ error: StoreError, vf: PCIAddress) -> StoreError {
        if case .sqlite(let code, let message, _) = error, code == 2067 /* SQLITE_CONSTRAINT_UNIQUE */,
            message.contains("allocations.vf")
        {
            return .vfAlreadyHeld(vf)
        }
        return error
    }
}

/// The WHERE clause of a listing, built from the filters that are set.
struct Conditions {
    private(set) var clauses: [String] = []
    private(set) var arguments: [(any SQLBindable)?] = []

    /// `column = value`, when there is a value.
    mutating func equal(_ column: String, _ value: String?) {
        guard let value else { return }
        clauses.append("\(column) = ?")
        arguments.append(value)
    }

    /// `column > cursor`, when there is a cursor; one this store did not give out is refused.
    mutating func after(_ column: String, cursor: String?) throws(StoreError) {
        guard let cursor else { return }
        guard let key = Int64(cursor), key >= 0 else { throw .invalidCursor(cursor) }
        clauses.append("\(column) > ?")
        arguments.append(key)
    }

    var whereClause: String { clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ") }
}
