import Glibc
import Synchronization

// Netlink needs nothing beyond Glibc: `sockaddr_nl` is small enough to declare here.

/// `struct sockaddr_nl` (linux/netlink.h): family, padding, port id, multicast groups; 12 bytes.
struct NetlinkAddress {
    var family = sa_family_t(AF_NETLINK)
    var pad: UInt16 = 0
    var portID: UInt32 = 0
    var groups: UInt32 = 0
}

/// The real kernel's rtnetlink: an `AF_NETLINK`/`NETLINK_ROUTE` socket. Requests are serialised on the one
/// socket; each gets the next sequence number, and replies carrying another sequence number (left over from a
/// request that timed out) are dropped.
public final class KernelRTNetlink: RTNetlinkTransport {
    private let fd: Int32
    /// The port id the kernel gave this socket at bind.
    public let portID: UInt32
    private let sequence: Mutex<UInt32>

    /// Opens and binds the socket.
    /// - Parameters:
    ///   - receiveTimeout: how long one receive may wait (`SO_RCVTIMEO`) before the request fails with
    ///     `ETIMEDOUT`, so a kernel that never answers cannot hang the caller.
    ///   - receiveBuffer: the socket's receive buffer (`SO_RCVBUFFORCE` if permitted, else `SO_RCVBUF`).
    public init(receiveTimeout: Duration = .seconds(5), receiveBuffer: Int32 = 4 << 20) throws(NetlinkError) {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), ABI.NETLINK_ROUTE)
        guard fd >= 0 else { throw .lastSystemError("socket(AF_NETLINK, NETLINK_ROUTE)") }
        do {
            try Self.configure(fd, receiveTimeout: receiveTimeout, receiveBuffer: receiveBuffer)
            self.portID = try Self.bind(fd, groups: 0)
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.sequence = Mutex(UInt32(truncatingIfNeeded: time(nil)))
    }

    deinit {
        close(fd)
    }

    public func request(_ message: [UInt8]) throws(NetlinkError) -> [[UInt8]] {
        guard message.count >= ABI.nlmsgHeaderSize else { throw .malformed("request shorter than nlmsghdr") }
        return try sequence.withLock { (next: inout UInt32) throws(NetlinkError) -> [[UInt8]] in
            next &+= 1
            let seq = next
            var request = ByteWriter()
            request.append(message)
            request.patchU32(at: 8, seq)
            request.patchU32(at: 12, portID)
            let wantsAck = ByteReader(message).u16(at: 6).map { $0 & ABI.NLM_F_ACK != 0 } ?? false
            try send(request.bytes)
            return try receiveReplies(sequence: seq, wantsAck: wantsAck)
        }
    }

    private func send(_ bytes: [UInt8]) throws(NetlinkError) {
        var kernel = NetlinkAddress()
        while true {
            let sent = bytes.withUnsafeBytes { buffer in
                withUnsafePointer(to: &kernel) { address in
                    address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(
                            fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<NetlinkAddress>.size))
                    }
                }
            }
            if sent == bytes.count { return }
            if sent < 0 && errno == EINTR { continue }
            if sent >= 0 { throw NetlinkError(errno: EMSGSIZE, context: "sendto: short write") }
            throw .lastSystemError("sendto")
        }
    }

    /// Reads datagrams until the reply to `sequence` is complete: `NLMSG_ERROR`, `NLMSG_DONE`, or (when no
    /// ack was asked for) a message without `NLM_F_MULTI`.
    private func receiveReplies(sequence: UInt32, wantsAck: Bool) throws(NetlinkError) -> [[UInt8]] {
        var replies: [[UInt8]] = []
        while true {
            let (datagram, sender) = try receiveDatagram()
            guard sender == 0 else { continue }  // only the kernel speaks on this socket
            for message in try NetlinkMessage.split(datagram) {
                let header = message.header
                guard header.sequence == sequence, header.portID == portID || header.portID == 0 else { continue }
                let start = message.payload.startIndex - ABI.nlmsgHeaderSize
                replies.append(Array(datagram[start..<message.payload.endIndex]))
                switch header.type {
                case ABI.NLMSG_ERROR, ABI.NLMSG_DONE: return replies
                case ABI.NLMSG_OVERRUN: throw NetlinkError(errno: ENOBUFS, context: "netlink overrun")
                default:
                    if !wantsAck && header.flags & ABI.NLM_F_MULTI == 0 { return replies }
                }
            }
        }
    }

    /// One whole datagram, however large: its size is learnt first with `MSG_PEEK | MSG_TRUNC` (a PF with
    /// hundreds of VFs answers with more than 64 KiB).
    private func receiveDatagram() throws(NetlinkError) -> ([UInt8], UInt32) {
        var size = 0
        while true {
            size = recv(fd, nil, 0, Int32(MSG_PEEK | MSG_TRUNC))
            if size >= 0 { break }
            try checkReceiveError("recv(MSG_PEEK|MSG_TRUNC)")
        }
        var buffer = [UInt8](repeating: 0, count: max(size, 1))
        var sender = NetlinkAddress()
        while true {
            var length = socklen_t(MemoryLayout<NetlinkAddress>.size)
            let count = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &sender) { address in
                    address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length)
                    }
                }
            }
            if count >= 0 {
                return (Array(buffer.prefix(count)), sender.portID)
            }
            try checkReceiveError("recvfrom")
        }
    }

    /// Returns for `EINTR` (retry); throws `ETIMEDOUT` for the receive timeout and the errno otherwise.
    private func checkReceiveError(_ operation: String) throws(NetlinkError) {
        let code = errno
        if code == EINTR { return }
        if code == EAGAIN || code == EWOULDBLOCK {
            throw NetlinkError(errno: ETIMEDOUT, context: "\(operation): no reply from the kernel in time")
        }
        throw NetlinkError(errno: code, context: operation)
    }

    static func configure(_ fd: Int32, receiveTimeout: Duration, receiveBuffer: Int32) throws(NetlinkError) {
        var buffer = receiveBuffer
        let size = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, size) != 0 {
            guard setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, size) == 0 else {
                throw .lastSystemError("setsockopt(SO_RCVBUF)")
            }
        }
        let (seconds, attoseconds) = receiveTimeout.components
        var timeout = timeval(tv_sec: Int(max(seconds, 0)), tv_usec: Int(attoseconds / 1_000_000_000_000))
        if timeout.tv_sec == 0 && timeout.tv_usec == 0 { timeout.tv_usec = 1 }  // 0 would mean "forever"
        guard setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw .lastSystemError("setsockopt(SO_RCVTIMEO)")
        }
        // Extended acks bring the kernel's error text; capped acks do not echo the whole request back.
        // Both are optional: older kernels refuse them and that is fine.
        var on: Int32 = 1
        _ = setsockopt(fd, ABI.SOL_NETLINK, ABI.NETLINK_EXT_ACK, &on, size)
        _ = setsockopt(fd, ABI.SOL_NETLINK, ABI.NETLINK_CAP_ACK, &on, size)
    }

    /// Binds to a kernel-chosen port id and returns it.
    static func bind(_ fd: Int32, groups: UInt32) throws(NetlinkError) -> UInt32 {
        var local = NetlinkAddress(groups: groups)
        var length = socklen_t(MemoryLayout<NetlinkAddress>.size)
        let bound = withUnsafeMutablePointer(to: &local) { address in
            address.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                Glibc.bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw .lastSystemError("bind(AF_NETLINK)") }
        return local.portID
    }
}
