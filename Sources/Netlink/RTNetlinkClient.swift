import Glibc

/// Reads and changes VF settings of a PF netdev over any `RTNetlinkTransport`. The same bytes go to the real
/// kernel and to the simulated one. Interfaces are named in the request (`IFLA_IFNAME`, `ifi_index` 0), so
/// no separate name lookup is needed on either.
public struct RTNetlinkClient: Sendable {
    public let transport: any RTNetlinkTransport

    public init(transport: any RTNetlinkTransport) {
        self.transport = transport
    }

    /// The interface with its VF list (`RTM_GETLINK` with `RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS`).
    /// A missing interface is `ENODEV`.
    public func link(_ selector: LinkSelector) throws(NetlinkError) -> LinkInfo {
        try link(selector, extMask: RTNetlinkCodec.defaultExtMask)
    }

    /// The interface with its VF list and each VF's traffic counters (`IFLA_VF_STATS`: `RTEXT_FILTER_VF` alone).
    /// The kernel fills the stats in under RTNL, so this costs the driver more than `link(_:)`; use it for reads
    /// that show traffic, not for every settings read.
    public func linkWithStats(_ selector: LinkSelector) throws(NetlinkError) -> LinkInfo {
        try link(selector, extMask: ABI.RTEXT_FILTER_VF)
    }

    private func link(_ selector: LinkSelector, extMask: UInt32) throws(NetlinkError) -> LinkInfo {
        let replies = try exchange(RTNetlinkCodec.makeGetLink(selector, extMask: extMask))
        for reply in replies {
            if case .link(let link) = reply { return link }
        }
        throw NetlinkError(errno: EBADMSG, context: "RTM_GETLINK answered without RTM_NEWLINK")
    }

    /// The VFs of a PF netdev as the kernel reports them.
    public func vfs(ofInterface name: String) throws(NetlinkError) -> [VFLinkInfo] {
        try link(.name(name)).vfs
    }

    /// Applies one setting to one VF with its own `RTM_NEWLINK` and waits for the ack. The driver's refusal
    /// comes back as its errno: `EOPNOTSUPP`, `EINVAL`, `EPROTONOSUPPORT`, ...
    public func apply(_ setting: VFSetting, vf: Int, interface: String) throws(NetlinkError) {
        let request = try RTNetlinkCodec.makeSetVF(setting, vf: vf, on: .name(interface))
        let replies = try exchange(request)
        guard replies.contains(.ack) else {
            throw NetlinkError(errno: EBADMSG, context: "RTM_NEWLINK answered without an ack")
        }
    }

    /// Sends a request, interprets each reply message, and throws the first kernel error.
    private func exchange(_ request: [UInt8]) throws(NetlinkError) -> [NetlinkReply] {
        var replies: [NetlinkReply] = []
        for bytes in try transport.request(request) {
            for message in try NetlinkMessage.split(bytes) {
                let reply = try RTNetlinkCodec.interpret(message)
                if case .error(let error) = reply { throw error }
                replies.append(reply)
            }
        }
        return replies
    }
}
