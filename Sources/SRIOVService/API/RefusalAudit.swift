import HTTPServer
import SRIOVCore

extension SRIOVAPI {
    /// The audit action of each route that changes something, as its use case names it, and the path parameter
    /// that names its target.
    static let mutationActions: [String: (action: String, target: String?)] = [
        "POST /pfs/{address}/vfs": ("pf.vfs.set", "address"),
        "DELETE /pfs/{address}/vfs": ("pf.vfs.set", "address"),
        "PATCH /vfs/{address}": ("vf.update", "address"),
        "POST /allocations": ("allocation.create", nil),
        "PATCH /allocations/{id}": ("allocation.update", "id"),
        "DELETE /allocations/{id}": ("allocation.release", "id"),
        "PUT /allocations/{id}/attachment": ("allocation.attach", "id"),
        "DELETE /allocations/{id}/attachment": ("allocation.detach", "id"),
        "POST /reconcile": ("reconcile.run", nil),
        "POST /allocations/{id}/renew": ("allocation.renew", "id"),
        "POST /allocations/{id}/move": ("allocation.move", "id"),
        "POST /pfs/{address}/cordon": ("pf.cordon", "address"),
        "DELETE /pfs/{address}/cordon": ("pf.uncordon", "address"),
        "POST /pfs/{address}/drain": ("pf.drain", "address"),
        "PUT /pfs/{address}/managed": ("pf.managed.set", "address"),
        "PUT /quotas/{owner_prefix}": ("quota.set", nil),
        "DELETE /quotas/{owner_prefix}": ("quota.delete", nil),
        "DELETE /docker/networks/{network}/endpoints/{endpoint}": ("docker.endpoint.delete", "endpoint"),
    ]

    /// Audits a request that `AccessControl` refused (401, 403) before its route ran: one failure event with the
    /// route's action (`http.<METHOD>` when the request matches no route), its target (the PCI address or
    /// allocation id, else the path), the refusal, and the actor as far as it is known. The body is never read.
    func auditRefusal(_ refused: RefusedRequest) async {
        let method = refused.request.method.rawValue
        let path = String(refused.request.path.prefix(256))
        let known = refused.pattern.flatMap { Self.mutationActions[method + " " + $0] }
        let target =
            known?.target.flatMap { refused.parameters[$0] }.map {
                String(HTTPRequest.percentDecodedPathSegment($0).prefix(256))
            } ?? path
        let details: [String: JSONValue] = [
            "method": .string(method), "path": .string(path), "status": .int(refused.status),
            "peer": .string(refused.context.remoteAddress),
        ]
        let event = Caller(actor: refused.actor, requestID: refused.context.requestID).event(
            known?.action ?? "http." + method, target: target, outcome: .failure,
            error: refused.reason + ": " + refused.detail, details: details)
        do {
            try await core.audit(event)
        } catch {
            core.logger.error("audit of a refused request failed", metadata: ["error": "\(error)"])
        }
    }
}
