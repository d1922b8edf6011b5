import Dispatch
import Glibc
import Synchronization
import Threading

/// Listens to a netlink multicast group on a thread of its own and hands each datagram the kernel sent (port id
/// 0; others are ignored) to a callback on that thread: the kernel's uevents (`UEventMonitor`) or its link
/// notifications (`init(links:onOverrun:)`). `stop()` wakes the thread through a pipe and waits for it to
/// finish; the monitor (its socket and thread) lives until `stop()` is called.
public final class NetlinkMonitor: Sendable {
    private let fd: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let finished = DispatchSemaphore(value: 0)
    private let state = Mutex(State())

    private struct State {
        var stopped = false
        /// The reader thread, once it runs: `stop()` from the callback must not wait for itself.
        var reader: pthread_t?
    }

    /// Opens the socket, joins the groups and starts the reader thread.
    /// - Parameters:
    ///   - receiveBuffer: socket buffer; enabling many VFs at once sends a burst of events.
    ///   - onDatagram: called on the monitor's thread for every datagram from the kernel; it should return quickly.
    ///   - onOverrun: called when the socket dropped datagrams (`ENOBUFS`): rescan what they would have told.
    public init(
        protocol family: Int32, groups: UInt32, name: String, receiveBuffer: Int32 = 4 << 20,
        onDatagram: @escaping @Sendable ([UInt8]) -> Void, onOverrun: @escaping @Sendable () -> Void = {}
    ) throws(NetlinkError) {
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), family)
        guard fd >= 0 else { throw .lastSystemError("socket(AF_NETLINK, \(family))") }
        var pipeFDs: [Int32] = [-1, -1]
        do throws(NetlinkError) {
            var buffer = receiveBuffer
            let size = socklen_t(MemoryLayout<Int32>.size)
            if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, size) != 0 {
                _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, size)
            }
            _ = try KernelRTNetlink.bind(fd, groups: groups)
            guard pipe(&pipeFDs) == 0 else { throw NetlinkError.lastSystemError("pipe") }
            for end in pipeFDs { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.wakeRead = pipeFDs[0]
        self.wakeWrite = pipeFDs[1]
        do {
            try DetachedThread.spawn(name: name, stackSize: 1 << 20) { [self] in
                state.withLock { $0.reader = pthread_self() }
                run(onDatagram: onDatagram, onOverrun: onOverrun)
                finished.signal()
            }
        } catch {
            close(fd)
            close(pipeFDs[0])
            close(pipeFDs[1])
            throw NetlinkError(errno: error.errno, context: "pthread_create")
        }
    }

    deinit {
        close(fd)
        close(wakeRead)
        close(wakeWrite)
    }

    /// Stops the reader and, unless called from the callback itself, waits until it has returned. Idempotent.
    public func stop() {
        let (first, reader) = state.withLock { state in
            defer { state.stopped = true }
            return (!state.stopped, state.reader)
        }
        guard first else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        if reader.map({ pthread_equal($0, pthread_self()) == 0 }) ?? true {
            finished.wait()
        }
    }

    private func run(onDatagram: @Sendable ([UInt8]) -> Void, onOverrun: @Sendable () -> Void) {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            var sender = NetlinkAddress()
            var length = socklen_t(MemoryLayout<NetlinkAddress>.size)
            let count = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &sender) { address in
                    address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, &length)
                    }
                }
            }
            if count < 0 {
                switch errno {
                case EINTR, EAGAIN: continue
                case ENOBUFS: onOverrun()
                default: return
                }
                continue
            }
            guard sender.portID == 0 else { continue }
            onDatagram(Array(buffer.prefix(count)))
        }
    }
}

/// The kernel's uevents (`NETLINK_KOBJECT_UEVENT`, multicast group 1), parsed.
public typealias UEventMonitor = NetlinkMonitor

extension NetlinkMonitor {
    /// Hands each kernel uevent to `onEvent`.
    public convenience init(
        receiveBuffer: Int32 = 4 << 20, onEvent: @escaping @Sendable (UEvent) -> Void,
        onOverrun: @escaping @Sendable () -> Void = {}
    ) throws(NetlinkError) {
        try self.init(
            protocol: ABI.NETLINK_KOBJECT_UEVENT, groups: 1, name: "uevent-monitor", receiveBuffer: receiveBuffer,
            onDatagram: { if let event = parseUEvent($0) { onEvent(event) } }, onOverrun: onOverrun)
    }

    /// Hands the name of every link the kernel reports changed (`RTNLGRP_LINK`: `RTM_NEWLINK`, `RTM_DELLINK`) to
    /// `onLink`: a cable pulled, a link set down, a netdev renamed or gone.
    public convenience init(
        links onLink: @escaping @Sendable (LinkInfo) -> Void, onOverrun: @escaping @Sendable () -> Void = {}
    )
        throws(NetlinkError)
    {
        try self.init(
            protocol: ABI.NETLINK_ROUTE, groups: ABI.RTMGRP_LINK, name: "link-monitor", receiveBuffer: 1 << 20,
            onDatagram: { datagram in
                guard let messages = try? NetlinkMessage.split(datagram) else { return }
                for message in messages {
                    if case .link(let link)? = try? RTNetlinkCodec.interpret(message) { onLink(link) }
                }
            }, onOverrun: onOverrun)
    }
}
