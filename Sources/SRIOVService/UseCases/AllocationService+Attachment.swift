import SRIOVCore
import SRIOVStore

extension AllocationService {
    /// Records (or, with nil, clears) where an active allocation's netdev went. Nothing is written to the hardware:
    /// the client moves the netdev; sriovd keeps the record so that the client can put it back later. Only an
    /// `active` allocation takes an attachment; any other is a 404, audited.
    func attach(id: String, attachment: Attachment?, caller: Caller) async throws(SRIOVError) -> Allocation {
        let action = attachment == nil ? "allocation.detach" : "allocation.attach"
        let result: Result<Allocation, SRIOVError> = try await core.perform { tx in
            guard var allocation = try tx.allocation(id: id), allocation.state == .active else {
                try tx.appendAudit(caller.failure(action, target: id, .allocationNotFound(id)))
                return .failure(.allocationNotFound(id))
            }
            let before = allocation.attachment
            allocation.attachment = attachment
            try tx.updateAllocationAttachment(id: id, attachment: attachment)
            try tx.appendAudit(
                caller.event(
                    action, target: id, outcome: .success,
                    details: [
                        "owner": .string(allocation.owner), "vf": .string(allocation.vf.description),
                        "before": Self.json(before), "after": Self.json(attachment),
                    ]))
            return .success(allocation)
        }
        return try result.get()
    }

    static func json(_ attachment: Attachment?) -> JSONValue {
        guard let attachment else { return .null }
        return .object([
            "netns": .string(attachment.netns), "ifname": .string(attachment.ifname),
            "original_ifname": .string(attachment.originalIfname), "original_mtu": .int(attachment.originalMTU),
            "original_mac": attachment.originalMAC.map(JSONValue.string) ?? .null,
            "attached_at": .string(attachment.attachedAt),
        ])
    }
}
