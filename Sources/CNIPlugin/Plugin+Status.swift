extension Plugin {
    /// STATUS (SPEC.md, section 2 "STATUS"): 50 when sriovd is unreachable or not ready, or when no VF could serve
    /// this configuration (its `deviceID`, else its `pf`, else its `selector`, else any VF on the host); then the
    /// IPAM plugin's own STATUS.
    func status() throws(CNIError) -> [UInt8] {
        do throws(CNIError) {
            let (ready, detail) = try sriovd.isReady()
            guard ready else { throw CNIError(.notAvailable, "sriovd is not ready", details: detail) }
            try requireServingVF()
        } catch  where error.code == CNIError.Code.tryAgainLater.rawValue {
            throw CNIError(.notAvailable, error.msg, details: error.details)
        }
        if let type = config.ipamType, CNIVersion.isAtLeast(config.cniVersion, "1.1.0") {
            do throws(CNIError) {
                try Delegate(type: type, environment: environment).run(.status, config: config.raw)
            } catch {
                throw CNIError(.notAvailable, error.msg, details: error.details)
            }
        }
        return []
    }

    /// Throws 50 unless a free VF matches what ADD would ask sriovd for; 51 when every such VF's PF has its link
    /// down, since the attachments this network already has are on those links too.
    func requireServingVF() throws(CNIError) {
        let candidates = try freeMatchingVFs()
        let scope =
            config.deviceID.map { "VF \($0)" } ?? config.pf.map { "PF \($0)" }
            ?? config.selector.map { "the selector \($0.text)" } ?? "this host"
        guard !candidates.isEmpty else {
            throw CNIError(
                .notAvailable, "no free VF on \(scope)",
                details:
                    "every matching VF is held or none exists; release one, or create more (POST /pfs/{address}/vfs)")
        }
        let linked = candidates.filter { vf in
            !(vf["health"]?["reasons"]?.array ?? []).contains(.string("pf_link_down"))
        }
        guard !linked.isEmpty else {
            let pfs = Set(candidates.compactMap { $0["pf"]?.string }).sorted().joined(separator: ", ")
            throw CNIError(
                .notAvailableLimitedConnectivity, "the link of PF \(pfs) is down",
                details: "VFs on \(scope) have no link, nor have the attachments this network already made; "
                    + "check the PF's cable and switch port (GET /pfs shows its link)")
        }
    }

    /// The free VFs that could serve the configuration: its `deviceID`, else its `pf`, else its `selector` (as ADD
    /// asks: a pf wins over a selector), else any VF. A deviceID sriovd does not know is 50 at once.
    func freeMatchingVFs() throws(CNIError) -> [JSON] {
        if let device = config.deviceID {
            guard let vf = try sriovd.vf(device.description) else {
                throw CNIError(
                    .notAvailable, "deviceID \(device) is not a VF sriovd knows",
                    details: "GET /vfs lists this host's VFs; create VFs (POST /pfs/{address}/vfs) or fix deviceID")
            }
            guard vf["status"]?.string == "free" else {
                throw CNIError(
                    .notAvailable, "VF \(device) is held",
                    details: "held by \(vf["allocation"]?["owner"]?.string ?? "another allocation"); DEL its attachment"
                )
            }
            return [vf]
        }
        let selector = config.pf == nil ? config.selector : nil
        let vfs = try sriovd.vfs(pf: config.pf?.description).filter { $0["status"]?.string == "free" }
        guard let selector else { return vfs }
        let pfs = try sriovd.pfs()
        let byAddress = Dictionary(pfs.compactMap { pf in pf["address"]?.string.map { ($0, pf) } }) { a, _ in a }
        return vfs.filter { vf in Self.selector(selector, matches: vf, of: vf["pf"]?.string.flatMap { byAddress[$0] }) }
    }

    /// sriovd's selector rule (`VFSelector.matches`) over the API's JSON: every criterion given must hold; vendor,
    /// device and driver match the VF's or the PF's; soft rules (placement, prefer_numa_node, anti_affinity) never
    /// exclude a VF.
    static func selector(_ selector: JSON, matches vf: JSON, of pf: JSON?) -> Bool {
        for key in ["vendor_id", "device_id", "driver"] {
            guard let wanted = selector[key]?.string else { continue }
            if wanted != vf[key]?.string && wanted != pf?[key]?.string { return false }
        }
        if let interface = selector["pf_interface"]?.string {
            let interfaces = pf?["interfaces"]?.array?.compactMap(\.string) ?? []
            if !interfaces.contains(interface) { return false }
        }
        if let node = selector["numa_node"]?.int, node != (vf["numa_node"]?.int ?? pf?["numa_node"]?.int) {
            return false
        }
        return true
    }
}
