import FoundationEssentials
import HTTPServer
import SRIOVCore
import SRIOVStore

/// Maintenance without losing anyone: cordon, managed VF ranges, moving an allocation, draining a PF, and an
/// allocation's identity for another host.
extension SRIOVAPI {
    func addMaintenanceRoutes(to router: inout Router) {
        router.add(.POST, "/pfs/{address}/cordon") { request, context, params in
            mutation(request, context) { caller in
                let state = try await MaintenanceService(core: core).setCordon(
                    pf: pciAddress(params["address"]), true, caller: caller)
                return JSONBody.ok(Self.json(state))
            }
        }
        router.add(.DELETE, "/pfs/{address}/cordon") { request, context, params in
            mutation(request, context) { caller in
                let state = try await MaintenanceService(core: core).setCordon(
                    pf: pciAddress(params["address"]), false, caller: caller)
                return JSONBody.ok(Self.json(state))
            }
        }
        router.add(.PUT, "/pfs/{address}/managed") { request, context, params in
            mutation(request, context) { caller in
                let address = try pciAddress(params["address"])
                let body = try JSONBody.decode(ManagedRangeRequest.self, from: request.body)
                let state = try await MaintenanceService(core: core).setManaged(
                    pf: address, range: body.range, caller: caller)
                return JSONBody.ok(Self.json(state))
            }
        }
        router.add(.POST, "/pfs/{address}/drain") { request, context, params in
            mutation(request, context) { caller in
                let address = try pciAddress(params["address"])
                return try await respond(request, caller: caller, kind: "pf.drain", target: address.description) {
                    JSONBody.ok(try await DrainService(core: core).drain(pf: address, caller: caller).json)
                }
            }
        }
        addMoveAndIdentityRoutes(to: &router)
    }

    private func addMoveAndIdentityRoutes(to router: inout Router) {
        router.add(.POST, "/allocations/{id}/move") { request, context, params in
            mutation(request, context) { caller in
                let id = params["id"] ?? ""
                let body: MoveRequest
                // No body is `{}`: any other PF the placement allows.
                let bytes = request.body.isEmpty ? Array("{}".utf8) : request.body
                do throws(SRIOVError) { body = try JSONBody.decode(MoveRequest.self, from: bytes) } catch {
                    try await core.audit(caller.failure("allocation.move", target: id, error))
                    throw error
                }
                let moved = try await AllocationService(core: core).move(id: id, to: body.destination, caller: caller)
                return JSONBody.ok(view(moved.allocation))
            }
        }
        router.add(.GET, "/allocations/{id}/identity") { request, _, params in
            read(request) {
                let id = params["id"] ?? ""
                guard let allocation = try read({ try $0.allocation(id: id) }), allocation.state.holdsVF else {
                    throw SRIOVError.allocationNotFound(id)
                }
                return JSONBody.ok(identity(of: allocation))
            }
        }
    }

    /// What another host's sriovd needs to recreate the allocation: its owner, labels, lease and identity (its
    /// config, with the MAC its VF has when the config names none), and where it came from.
    private func identity(of allocation: Allocation) -> JSONValue {
        var config = allocation.config ?? VFConfig()
        if config.mac == nil, let (pf, vf) = core.inventory.snapshot.vf(allocation.vf),
            let mac = try? core.vfs.state(of: vf, pf: pf).mac, mac.lowercased() != VFState.zeroMAC
        {
            config.mac = mac
        }
        return .object([
            "owner": .string(allocation.owner), "labels": .object(allocation.labels.mapValues(JSONValue.string)),
            "config": config.jsonValue, "lease_seconds": allocation.leaseSeconds.map(JSONValue.int) ?? .null,
            "source": .object([
                "allocation_id": .string(allocation.id), "vf": .string(allocation.vf.description),
                "pf": .string(allocation.pf.description), "generation": .int(allocation.generation),
            ]),
        ])
    }

    static func json(_ state: PFMaintenance) -> JSONValue {
        .object([
            "pf": .string(state.pf.description), "cordoned": .bool(state.cordoned),
            "cordoned_at": state.cordonedAt.map(JSONValue.string) ?? .null,
            "managed_vfs": state.managed.map { .string(VFRangeText.text($0)) } ?? .null,
        ])
    }
}
