import FoundationEssentials
import SRIOVCore

/// One event of `GET /events`: an audit record, typed for subscribers, and its Server-Sent Events frame.
///
/// Every event is a row of the audit log, so its id is the row's: a client that reconnects with the last id it saw
/// gets every event after it, in order, from the log.
struct ServerEvent: Sendable {
    let id: Int64
    /// `allocation.created`, `pf.vfs.changed`, `link.down`, `operation.succeeded`, ... (see `type(of:)`).
    let type: String
    let pf: String?
    let vf: String?
    let owner: String?
    /// `id:`, `event:` and one `data:` line (compact JSON), then the blank line that ends an event.
    let frame: [UInt8]

    init(_ audit: AuditEvent, inventory: InventorySnapshot) {
        let details = (try? JSONValue.parse(audit.details)) ?? .object([:])
        let subject = details["after"] ?? details["before"] ?? details
        let target = PCIAddress(audit.target)
        let vf: String? =
            subject["vf"]?.string ?? target.flatMap { inventory.vf($0) != nil ? $0.description : nil }
        let pf: String? =
            subject["pf"]?.string
            ?? target.flatMap { address in
                inventory.pf(address) != nil ? address.description : inventory.vf(address)?.pf.address.description
            }
        id = audit.id
        type = Self.type(of: audit)
        self.pf = pf
        self.vf = vf
        owner = subject["owner"]?.string
        let data = JSONValue.object([
            "id": .int(Int(audit.id)), "type": .string(type), "at": .string(audit.at), "actor": .string(audit.actor),
            "action": .string(audit.action), "target": .string(audit.target),
            "outcome": .string(audit.outcome.rawValue), "error": audit.error.map(JSONValue.string) ?? .null,
            "request_id": audit.requestID.map(JSONValue.string) ?? .null, "details": details,
            "pf": pf.map(JSONValue.string) ?? .null, "vf": vf.map(JSONValue.string) ?? .null,
            "owner": owner.map(JSONValue.string) ?? .null,
        ])
        frame = Self.frame(id: audit.id, type: type, data: data.text)
    }

    /// The event type of an audit record: what happened, in the past tense where the action names a request; a
    /// refused or failed action is `<action>.failed`.
    static func type(of audit: AuditEvent) -> String {
        guard audit.outcome == .success else { return audit.action + ".failed" }
        return switch audit.action {
        case "allocation.create": "allocation.created"
        case "allocation.release": "allocation.released"
        case "allocation.update": "allocation.changed"
        case "allocation.renew": "allocation.renewed"
        case "allocation.active": "allocation.readopted"
        case "pf.vfs.set": "pf.vfs.changed"
        case "vf.update": "vf.settings.changed"
        case "reconcile.run": "reconcile.finished"
        case "intent.recover": "intent.recovered"
        case "docker.network.create": "docker.network.created"
        case "docker.network.delete": "docker.network.deleted"
        case "docker.endpoint.create": "docker.endpoint.created"
        case "docker.endpoint.join": "docker.endpoint.joined"
        case "docker.endpoint.leave": "docker.endpoint.left"
        case "docker.endpoint.delete": "docker.endpoint.deleted"
        default: audit.action
        }
    }

    /// One Server-Sent Events frame (WHATWG HTML, "Server-sent events"): the data must hold no line break, which
    /// compact JSON never does.
    static func frame(id: Int64?, type: String, data: String) -> [UInt8] {
        var text = ""
        if let id { text += "id: \(id)\n" }
        text += "event: \(type)\ndata: \(data)\n\n"
        return Array(text.utf8)
    }
}

/// Which events a subscriber wants.
struct EventFilter: Sendable {
    /// A prefix of the type: `allocation.` for every allocation event.
    var type: String?
    var pf: String?
    var vf: String?
    var owner: String?

    func matches(_ event: ServerEvent) -> Bool {
        if let type, !event.type.hasPrefix(type) { return false }
        if let pf, event.pf != pf { return false }
        if let vf, event.vf != vf { return false }
        if let owner, event.owner != owner { return false }
        return true
    }
}

extension JSONValue {
    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}
