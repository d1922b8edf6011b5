/// Carries one rtnetlink request to a kernel (real or simulated) and brings back its replies.
public protocol RTNetlinkTransport: Sendable {
    /// Sends one request message and returns every reply message to it, one netlink message per element,
    /// up to and including the `NLMSG_ERROR` (ack or error) or `NLMSG_DONE` that ends it. The transport owns
    /// the sequence number and port id fields of the request and may overwrite them.
    func request(_ message: [UInt8]) throws(NetlinkError) -> [[UInt8]]
}
