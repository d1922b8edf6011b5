import Glibc
import Netlink

extension Plugin {
    /// CHECK: the attachment's allocation is active, its interface is in the namespace with the MAC, MTU and
    /// addresses `prevResult` names, and the IPAM plugin agrees (SPEC.md, section 2 "CHECK").
    func check() throws(CNIError) -> [UInt8] {
        let owner = environment.owner!
        let ifname = environment.ifname!
        let netnsPath = environment.netns!
        guard let previous = config.prevResult else {
            throw CNIError(.invalidConfig, "CHECK needs prevResult", details: "the runtime passes ADD's result")
        }
        guard let allocation = try holdingAllocations().first else {
            throw CNIError(
                .checkFailed, "sriovd holds no VF for \(owner)", details: "the attachment must be added again")
        }
        guard allocation.state == "active" else {
            throw CNIError(
                .checkFailed, "the allocation \(allocation.id) of \(owner) is \(allocation.state)",
                details: "see GET /allocations/\(allocation.id) and the audit for what sriovd found")
        }
        let interfaces = previous["interfaces"]?.array ?? []
        let position = interfaces.firstIndex { $0["name"]?.string == ifname && $0["sandbox"]?.string == netnsPath }
        if allocation.driver != "vfio-pci", let position {
            let expected = interfaces[position]
            let inside = try netlink(try namespace(netnsPath))
            let link: LinkInfo
            do {
                link = try inside.basicLink(.name(ifname))
            } catch {
                throw CNIError(.checkFailed, "\(ifname) is missing from \(netnsPath)", details: "\(error)")
            }
            if let mac = expected["mac"]?.string, link.address.map(formatMAC) != mac.lowercased() {
                throw CNIError(
                    .checkFailed, "\(ifname) has MAC \(link.address.map(formatMAC) ?? "none"), ADD gave it \(mac)")
            }
            if let mtu = expected["mtu"]?.int ?? config.mtu, link.mtu.map(Int.init) != mtu {
                throw CNIError(.checkFailed, "\(ifname) has MTU \(link.mtu.map(String.init) ?? "none"), not \(mtu)")
            }
            for entry in previous["ips"]?.array ?? [] where entry["interface"]?.int == position {
                guard let text = entry["address"]?.string, let prefix = IPPrefix(cidr: text) else { continue }
                let family = prefix.address.count == 16 ? AF_INET6 : AF_INET
                let present: [([UInt8], UInt8)]
                do {
                    present = try inside.addresses(index: link.index, family: family)
                } catch {
                    throw CNIError(.checkFailed, "could not read the addresses of \(ifname)", details: "\(error)")
                }
                guard present.contains(where: { $0.0 == prefix.address && $0.1 == prefix.length }) else {
                    throw CNIError(.checkFailed, "\(ifname) lacks the address \(text) that ADD gave it")
                }
            }
        }
        if let type = config.ipamType {
            try Delegate(type: type, environment: environment).run(.check, config: config.raw)
        }
        return []
    }

    /// GC: releases this network's `cni:` allocations that are not in `cni.dev/valid-attachments` (moving their
    /// netdevs back where a namespace still holds one), then GC on the IPAM plugin. Goes on past errors and
    /// reports them all.
    func gc() throws(CNIError) -> [UInt8] {
        let valid = Set(
            config.validAttachments.map { CNIEnvironment.owner(containerID: $0.containerID, ifname: $0.ifname) })
        var failures: [String] = []
        for allocation in try sriovd.activeAllocations()
        where allocation.owner.hasPrefix("cni:") && allocation.labels["cni.network"] == config.name
            && !valid.contains(allocation.owner)
        {
            if let attachment = Self.attachment(allocation.attachment) {
                if let outcome = try? moveBack(attachment, owner: allocation.owner, vf: allocation.vf) {
                    log("sriovd-cni: GC \(allocation.owner): \(outcome)")
                }
            }
            do {
                try sriovd.release(id: allocation.id)
                log("sriovd-cni: GC released \(allocation.id) of \(allocation.owner)")
            } catch {
                failures.append("\(allocation.owner): \(error)")
            }
        }
        if let type = config.ipamType {
            do {
                try Delegate(type: type, environment: environment).run(.gc, config: config.raw)
            } catch {
                failures.append("\(error)")
            }
        }
        guard failures.isEmpty else {
            throw CNIError(
                .tryAgainLater, "GC left \(failures.count) stale attachments", details: failures.joined(separator: "; ")
            )
        }
        return []
    }
}
