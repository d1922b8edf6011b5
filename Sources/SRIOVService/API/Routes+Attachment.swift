import HTTPServer
import SRIOVCore

/// `PUT` and `DELETE /allocations/{id}/attachment`: where a held VF's netdev went (the CNI plugin's record).
extension SRIOVAPI {
    func addAttachmentRoutes(to router: inout Router) {
        router.add(.PUT, "/allocations/{id}/attachment") { request, context, params in
            mutation(request, context) { caller in
                let body = try JSONBody.decode(AttachmentRequest.self, from: request.body)
                let attachment = Attachment(
                    netns: body.netns, ifname: body.ifname, originalIfname: body.originalIfname,
                    originalMTU: body.originalMTU, originalMAC: body.originalMAC, attachedAt: Timestamp.now())
                let updated = try await AllocationService(core: core).attach(
                    id: params["id"] ?? "", attachment: attachment, caller: caller)
                return JSONBody.ok(view(updated))
            }
        }
        router.add(.DELETE, "/allocations/{id}/attachment") { request, context, params in
            mutation(request, context) { caller in
                let updated = try await AllocationService(core: core).attach(
                    id: params["id"] ?? "", attachment: nil, caller: caller)
                return JSONBody.ok(view(updated))
            }
        }
    }
}

/// `PUT /allocations/{id}/attachment`.
struct AttachmentRequest: Decodable, Sendable {
    var netns: String
    var ifname: String
    var originalIfname: String
    var originalMTU: Int
    var originalMAC: String?

    enum CodingKeys: String, CodingKey {
        case netns, ifname
        case originalIfname = "original_ifname"
        case originalMTU = "original_mtu"
        case originalMAC = "original_mac"
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["netns", "ifname", "original_ifname", "original_mtu", "original_mac"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        netns = try container.decode(String.self, forKey: .netns)
        ifname = try container.decode(String.self, forKey: .ifname)
        originalIfname = try container.decode(String.self, forKey: .originalIfname)
        originalMTU = try container.decode(Int.self, forKey: .originalMTU)
        originalMAC = try container.decodeIfPresent(String.self, forKey: .originalMAC)
        let probe = Attachment(
            netns: netns, ifname: ifname, originalIfname: originalIfname, originalMTU: originalMTU,
            originalMAC: originalMAC, attachedAt: "")
        if let (field, reason) = probe.problem() { throw SRIOVError.invalidField(field, reason) }
    }
}
