import Glibc
import Netlink
import SRIOVCore

extension Plugin {
    /// DEL: for each allocation this attachment holds, the netdev moved back to the host namespace under its
    /// original name, MTU and MAC, the allocation released (sriovd restores the VF, fenced by the allocation id),
    /// then IPAM DEL. Idempotent and safe late: a namespace already gone, an allocation already released, a
    /// sriovd restarted meanwhile are all success. A late DEL never touches a VF that moved on: it finds only its
    /// own owner's allocations.
    func del() throws(CNIError) -> [UInt8] {
        let owner = environment.owner!
        for allocation in try holdingAllocations() {
            if let attachment = Self.attachment(allocation.attachment) {
                do {
                    let outcome = try moveBack(attachment, owner: owner, vf: allocation.vf)
                    log("sriovd-cni: DEL \(owner): \(outcome)")
                } catch {
                    log("sriovd-cni: DEL \(owner): could not move the netdev back (\(error)); releasing anyway")
                }
            }
            try sriovd.release(id: allocation.id)
            log("sriovd-cni: DEL \(owner): allocation \(allocation.id) released")
        }
        if let type = config.ipamType {
            try Delegate(type: type, environment: environment).run(.del, config: config.raw)
        }
        return []
    }

    static func attachment(_ json: JSON?) -> Attachment? {
        guard let json, let netns = json["netns"]?.string, let ifname = json["ifname"]?.string,
            let original = json["original_ifname"]?.string, let mtu = json["original_mtu"]?.int
        else { return nil }
        return Attachment(
            netns: netns, ifname: ifname, originalIfname: original, originalMTU: mtu,
            originalMAC: json["original_mac"]?.string, attachedAt: json["attached_at"]?.string ?? "")
    }

    /// Puts a netdev back: out of the namespace (found under `ifname` or the temporary name) under its original
    /// name, then its original MTU and MAC. With the namespace gone, a physical netdev is already back in the host
    /// namespace (the kernel returns it under its name in the namespace, or as `devN`): the name sysfs lists for the
    /// VF now is renamed back. Returns what it did.
    func moveBack(_ attachment: Attachment, owner: String, vf: String) throws(NetlinkError) -> String {
        let host = try step("netns-open") { () throws(NetlinkError) in try NetworkNamespace.current() }
        let outside = try step("netlink-socket") { () throws(NetlinkError) in try host.netlink() }
        let container: NetworkNamespace
        do {
            container = try step("netns-open") { () throws(NetlinkError) in
                try NetworkNamespace(path: attachment.netns)
            }
        } catch  where error.errno == ENOENT {
            let current = VFNetdev.awaitName(of: vf)
            if let current, current != attachment.originalIfname,
                let link = try? outside.basicLink(.name(current))
            {
                try restore(link.index, attachment, outside: outside, rename: true)
                return "namespace gone; \(current) renamed back to \(attachment.originalIfname)"
            }
            if let link = try? outside.basicLink(.name(attachment.originalIfname)) {
                try restore(link.index, attachment, outside: outside, rename: false)
                return "namespace gone; \(attachment.originalIfname) is on the host"
            }
            return "namespace \(attachment.netns) gone; its netdev went with it"
        }
        let inside = try step("netlink-socket") { () throws(NetlinkError) in try container.netlink() }
        let temporary = Self.temporaryName(owner: owner)
        guard
            let link = try? step(
                "link-read",
                { () throws(NetlinkError) in
                    if let link = try? inside.basicLink(.name(attachment.ifname)) { return link }
                    return try inside.basicLink(.name(temporary))
                })
        else {
            return "no \(attachment.ifname) in \(attachment.netns); nothing to move"
        }
        try step("link-down") { () throws(NetlinkError) in try inside.setLink(index: link.index, LinkChange(up: false))
        }
        var name = attachment.originalIfname
        do {
            try step("netns-move") { () throws(NetlinkError) in
                try inside.setLink(index: link.index, LinkChange(namespaceFD: host.fd, name: name))
            }
        } catch  where error.errno == EEXIST {
            // The original name was taken meanwhile: the netdev still comes home, under the temporary name.
            name = temporary
            try inside.setLink(index: link.index, LinkChange(namespaceFD: host.fd, name: name))
        }
        let home = try step("link-read") { () throws(NetlinkError) in try outside.basicLink(.name(name)) }
        try step("restore-mtu-mac") { () throws(NetlinkError) in
            try restore(home.index, attachment, outside: outside, rename: false)
        }
        return "\(attachment.ifname) moved back from \(attachment.netns) as \(name)"
    }

    private func restore(_ index: Int32, _ attachment: Attachment, outside: RTNetlinkClient, rename: Bool)
        throws(NetlinkError)
    {
        if rename { try outside.setLink(index: index, LinkChange(up: false)) }
        try outside.setLink(
            index: index,
            LinkChange(
                name: rename ? attachment.originalIfname : nil, mtu: UInt32(attachment.originalMTU),
                address: attachment.originalMAC.flatMap(NetworkConfig.parseMAC)))
    }
}
