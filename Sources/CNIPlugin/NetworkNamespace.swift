import CLinux
import Glibc
import Netlink
import Synchronization
import Threading

/// A network namespace, held open by a descriptor, and rtnetlink inside it.
///
/// A netlink socket belongs to the namespace it was created in, whichever thread uses it later. So the plugin
/// enters the namespace with setns(2) on a dedicated thread only to create the socket there, and leaves at once:
/// the process's other threads, and the Swift runtime's, never change namespace.
public final class NetworkNamespace: @unchecked Sendable {
    public let path: String
    public let fd: Int32
    /// Whether this is the namespace the process runs in: its socket needs no setns(2) and no thread.
    let isCurrent: Bool

    /// Opens the namespace. `ENOENT` when it is gone (a late DEL), and the like for a path that is not one.
    public convenience init(path: String) throws(NetlinkError) {
        try self.init(path: path, isCurrent: false)
    }

    init(path: String, isCurrent: Bool) throws(NetlinkError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NetlinkError(errno: errno, context: "open(\(path))") }
        self.path = path
        self.fd = fd
        self.isCurrent = isCurrent
    }

    /// The namespace the calling process runs in (where the runtime runs plugins: the host's).
    public static func current() throws(NetlinkError) -> NetworkNamespace {
        try NetworkNamespace(path: "/proc/self/ns/net", isCurrent: true)
    }

    deinit { close(fd) }

    /// An rtnetlink client whose socket lives in this namespace.
    public func netlink() throws(NetlinkError) -> RTNetlinkClient {
        if isCurrent { return RTNetlinkClient(transport: try KernelRTNetlink(receiveTimeout: .seconds(10))) }
        let outcome = Mutex<Result<KernelRTNetlink, NetlinkError>?>(nil)
        let done = ConditionLock()
        let target = fd
        let path = path
        let spawned: Void? = try? DetachedThread.spawn(name: "cni-setns") {
            let result = Result { () throws(NetlinkError) -> KernelRTNetlink in
                let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
                guard home >= 0 else { throw NetlinkError(errno: errno, context: "open(/proc/thread-self/ns/net)") }
                defer { close(home) }
                guard setns(target, cloneNewNet) == 0 else {
                    throw NetlinkError(errno: errno, context: "setns(\(path))")
                }
                let socket = Result { () throws(NetlinkError) in try KernelRTNetlink(receiveTimeout: .seconds(10)) }
                // Back home before anything else runs on this thread (it ends right after, in any case).
                _ = setns(home, cloneNewNet)
                return try socket.get()
            }
            done.withLock {
                outcome.withLock { $0 = result }
                done.broadcast()
            }
        }
        guard spawned != nil else { throw NetlinkError(errno: EAGAIN, context: "pthread_create") }
        let result = done.withLock { () -> Result<KernelRTNetlink, NetlinkError> in
            while true {
                if let result = outcome.withLock({ $0 }) { return result }
                done.wait()
            }
        }
        return RTNetlinkClient(transport: try result.get())
    }
}

/// `CLONE_NEWNET` (linux/sched.h), which glibc shows only under _GNU_SOURCE.
private let cloneNewNet: Int32 = 0x4000_0000
