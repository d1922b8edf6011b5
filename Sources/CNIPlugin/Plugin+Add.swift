import Glibc
import Netlink
import SRIOVCore

extension Plugin {
    /// ADD: a VF from sriovd (settings applied PF-side, the allocation recorded), its netdev moved into
    /// `CNI_NETNS` under a temporary name, renamed to `CNI_IFNAME`, given its MTU and MAC and brought up, IPAM run
    /// and applied, the result printed. Any failure undoes what was done, in reverse, before the error.
    func add() throws(CNIError) -> [UInt8] {
        let owner = environment.owner!
        let netnsPath = environment.netns!
        let ifname = environment.ifname!
        let container = try namespace(netnsPath)
        let inside = try netlink(container)
        if (try? inside.basicLink(.name(ifname))) != nil {
            throw CNIError(
                .interfaceFailure, "an interface named \(ifname) already exists in \(netnsPath)",
                details: "choose another CNI_IFNAME, or DEL the attachment that made it")
        }
        var undo = Undo()
        do throws(CNIError) {
            let allocation = try allocate(owner: owner)
            undo.add("allocation \(allocation.id)") { try sriovd.release(id: allocation.id) }
            var interface: [String: JSON] = ["name": .string(ifname), "sandbox": .string(netnsPath)]
            interface["pciID"] = .string(allocation.vf)
            let isVFIO = allocation.driver == "vfio-pci"
            var index: Int32?
            if !isVFIO {
                let moved = try moveIn(allocation, ifname: ifname, container: container, inside: inside, undo: &undo)
                index = moved.index
                if let address = moved.address { interface["mac"] = .string(formatMAC(address)) }
                if let mtu = moved.mtu { interface["mtu"] = .number(Double(mtu)) }
            }
            var ipam: JSON?
            if let type = config.ipamType {
                let delegate = Delegate(type: type, environment: environment)
                // SPEC.md section 4: a delegate that fails ADD is run again with DEL before the error.
                undo.add("IPAM \(type)") { try delegate.run(.del, config: config.raw) }
                let output = try delegate.run(.add, config: config.raw)
                guard let parsed = try? JSON.parse(output) else {
                    throw CNIError(.delegateFailure, "IPAM plugin \(type) printed a result that is not JSON")
                }
                ipam = parsed
                if let index { try configure(index, ipam: parsed, inside: inside) }
            }
            let result = CNIResult.make(
                version: config.cniVersion, interface: interface, ipam: ipam, dns: config.dns,
                previous: config.prevResult)
            log("sriovd-cni: ADD \(owner): VF \(allocation.vf) (allocation \(allocation.id)) as \(ifname)")
            return result.bytes
        } catch {
            undo.run(log)
            throw error
        }
    }

    /// The attachment's allocation: the one it already holds (a retried ADD), or a new one. A first ADD, the common
    /// case, is one request under the key of the attachment's first allocation; only when sriovd has seen that key
    /// (a retried ADD, or an ADD after a DEL of the same container and interface) does the attachment's history
    /// decide: the allocation it still holds, else a new one under the next key.
    func allocate(owner: String) throws(CNIError) -> SRIOVDClient.Allocation {
        let body = allocationRequest(owner: owner)
        if case .created(let allocation) = try sriovd.allocate(
            body, idempotencyKey: Self.idempotencyKey(owner: owner, previous: 0))
        {
            return allocation
        }
        let history = try sriovd.allocations(owner: owner)
        if let held = history.first(where: \.holdsVF) { return held }
        let key = Self.idempotencyKey(owner: owner, previous: history.count)
        switch try sriovd.allocate(body, idempotencyKey: key) {
        case .created(let allocation), .replayed(let allocation): return allocation
        case .keyReused:
            throw CNIError(
                .tryAgainLater, "sriovd holds another request under the Idempotency-Key \(key)",
                details: "another ADD of \(owner) with another configuration is under way; retry when it ends")
        }
    }

    /// The body of `POST /allocations` for this attachment: which VF, its labels and settings.
    func allocationRequest(owner: String) -> JSON {
        var body: [String: JSON] = ["owner": .string(owner)]
        if let device = config.deviceID {
            body["vf"] = .string(device.description)
        } else if let pf = config.pf {
            body["pf"] = .string(pf.description)
        } else if let selector = config.selector {
            body["selector"] = selector
        }
        var labels: [String: JSON] = ["cni.network": .string(config.name)]
        if let namespace = environment.args["K8S_POD_NAMESPACE"] { labels["k8s.pod.namespace"] = .string(namespace) }
        if let pod = environment.args["K8S_POD_NAME"] { labels["k8s.pod.name"] = .string(pod) }
        body["labels"] = .object(labels)
        if !config.vfConfig.isEmpty { body["config"] = .object(config.vfConfig) }
        return .object(body)
    }

    /// Records the attachment, moves the netdev in under a temporary name, renames it, sets MTU and MAC, brings it
    /// up. Returns the link as it is then.
    func moveIn(
        _ allocation: SRIOVDClient.Allocation, ifname: String, container: NetworkNamespace,
        inside: RTNetlinkClient, undo: inout Undo
    ) throws(CNIError) -> LinkInfo {
        let recorded = allocation.attachment?["original_ifname"]?.string
        guard let hostName = allocation.interface ?? recorded else {
            throw CNIError(
                .refusedBySRIOVD, "VF \(allocation.vf) has no netdev in the host namespace",
                details:
                    "its driver is \(allocation.driver ?? "none"); use a VF with a netdev driver, or driver vfio-pci")
        }
        let host: NetworkNamespace
        let outside: RTNetlinkClient
        let link: LinkInfo
        do {
            host = try step("netns-open") { () throws(NetlinkError) in try NetworkNamespace.current() }
            outside = try step("netlink-socket") { () throws(NetlinkError) in try host.netlink() }
            link = try step("link-read") { () throws(NetlinkError) in try outside.basicLink(.name(hostName)) }
        } catch {
            throw interfaceFailure("VF \(allocation.vf)'s netdev \(hostName) is not in the host namespace", error)
        }
        let originalMTU = Int(link.mtu ?? 1500)
        let originalMAC = link.address.map(formatMAC)
        var record: [String: JSON] = [
            "netns": .string(container.path), "ifname": .string(ifname), "original_ifname": .string(hostName),
            "original_mtu": .number(Double(originalMTU)),
        ]
        if let originalMAC { record["original_mac"] = .string(originalMAC) }
        try sriovd.setAttachment(id: allocation.id, .object(record))

        let temporary = Self.temporaryName(owner: allocation.owner)
        do {
            try step("netns-move") { () throws(NetlinkError) in
                try outside.setLink(index: link.index, LinkChange(namespaceFD: container.fd, name: temporary))
            }
        } catch {
            throw interfaceFailure("could not move \(hostName) into \(container.path)", error)
        }
        let back = Attachment(
            netns: container.path, ifname: ifname, originalIfname: hostName, originalMTU: originalMTU,
            originalMAC: originalMAC, attachedAt: "")
        undo.add("the move of \(hostName) into \(container.path)") {
            _ = try moveBack(back, owner: allocation.owner, vf: allocation.vf)
        }
        do {
            let moved = try step("link-read") { () throws(NetlinkError) in try inside.basicLink(.name(temporary)) }
            let mac = config.mac.flatMap(NetworkConfig.parseMAC)
            // One request: the kernel sets the MAC and MTU, renames, then brings the link up (do_setlink's order).
            try step("rename-mtu-mac-up") { () throws(NetlinkError) in
                try inside.setLink(
                    index: moved.index,
                    LinkChange(name: ifname, mtu: config.mtu.map { UInt32($0) }, address: mac, up: true))
            }
            return try step("link-read") { () throws(NetlinkError) in try inside.basicLink(.index(moved.index)) }
        } catch {
            throw interfaceFailure("could not set up \(ifname) in \(container.path)", error)
        }
    }

    /// Applies an IPAM result: its addresses on the link, then its routes (a route without `gw` takes the gateway
    /// of an address of its family, else it is on-link).
    func configure(_ index: Int32, ipam: JSON, inside: RTNetlinkClient) throws(CNIError) {
        var gateways: [Int: [UInt8]] = [:]
        for entry in ipam["ips"]?.array ?? [] {
            guard let text = entry["address"]?.string, let prefix = IPPrefix(cidr: text) else {
                throw CNIError(.delegateFailure, "IPAM gave an address that is not CIDR: \(entry.text)")
            }
            do {
                try inside.addAddress(index: index, address: prefix.address, prefixLength: prefix.length)
            } catch {
                throw interfaceFailure("could not add \(text)", error)
            }
            if let gateway = entry["gateway"]?.string.flatMap(IPPrefix.parse) { gateways[gateway.count] = gateway }
        }
        for route in ipam["routes"]?.array ?? [] {
            guard let text = route["dst"]?.string, let prefix = IPPrefix(cidr: text) else {
                throw CNIError(.delegateFailure, "IPAM gave a route whose dst is not CIDR: \(route.text)")
            }
            let gateway = route["gw"]?.string.flatMap(IPPrefix.parse) ?? gateways[prefix.address.count]
            do {
                try inside.addRoute(
                    index: index, destination: prefix.address, prefixLength: prefix.length, gateway: gateway)
            } catch  where error.errno == EEXIST {
                continue
            } catch {
                throw interfaceFailure("could not add the route to \(text)", error)
            }
        }
    }
}
