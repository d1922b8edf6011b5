import SRIOVCore

/// Who asked for a change, for the audit trail.
public struct Caller: Sendable {
    /// The peer address for now; token names and Unix peers later; `reconciler` for the daemon itself.
    public var actor: String
    public var requestID: String?

    public init(actor: String, requestID: String?) {
        self.actor = actor
        self.requestID = requestID
    }

    public static let reconciler = Caller(actor: "reconciler", requestID: nil)
    /// Changes of the host that sriovd observed rather than made.
    public static let kernel = Caller(actor: "kernel", requestID: nil)

    /// An audit event on behalf of this caller, stamped now.
    func event(
        _ action: String, target: String, outcome: AuditEvent.Outcome, error: String? = nil,
        details: [String: JSONValue] = [:]
    ) -> AuditEvent {
        AuditEvent(
            at: Timestamp.now(), actor: actor, action: action, target: target, outcome: outcome, error: error,
            requestID: requestID, details: JSONValue.object(details).text)
    }

    func failure(_ action: String, target: String, _ error: SRIOVError, details: [String: JSONValue] = [:])
        -> AuditEvent
    {
        let (detail, _) = error.detailAndExtensions
        return event(
            action, target: target, outcome: .failure, error: error.problemSlug + ": " + detail, details: details)
    }
}
