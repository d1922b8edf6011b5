import Glibc

/// A failure reported by the kernel (a negative `NLMSG_ERROR`), by a socket call, or by the codec when bytes
/// do not parse. It always carries a Linux errno value and its symbolic name, so callers can branch on the
/// number and log the name.
public struct NetlinkError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The positive errno value, for example `EOPNOTSUPP` (95).
    public var errno: Int32
    /// The symbolic name of `errno`, for example `"EOPNOTSUPP"`, or `"E<number>"` for one not in the table.
    public var name: String
    /// What failed: the operation, the kernel's extended-ack text, or why bytes did not parse.
    public var context: String

    /// Makes an error from an errno value; the name is looked up.
    public init(errno: Int32, context: String = "") {
        self.errno = errno
        self.name = NetlinkError.name(ofErrno: errno)
        self.context = context
    }

    public var description: String {
        context.isEmpty ? name : "\(context): \(name)"
    }

    /// Bytes that are not a well-formed netlink message (`EBADMSG`).
    package static func malformed(_ why: String) -> NetlinkError {
        NetlinkError(errno: EBADMSG, context: "malformed netlink message: \(why)")
    }

    /// The errno of the failed libc call just made, with the call's name as context.
    static func lastSystemError(_ operation: String) -> NetlinkError {
        NetlinkError(errno: Glibc.errno, context: operation)
    }

    /// The symbolic name of an errno value; `"E<number>"` when it is not one the SR-IOV paths meet.
    public static func name(ofErrno value: Int32) -> String {
        errnoNames[value] ?? "E\(value)"
    }

    private static let errnoNames: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", ENXIO: "ENXIO",
        E2BIG: "E2BIG", EBADF: "EBADF", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT",
        EBUSY: "EBUSY", EEXIST: "EEXIST", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EINVAL: "EINVAL",
        ENFILE: "ENFILE", EMFILE: "EMFILE", ENOSPC: "ENOSPC", ERANGE: "ERANGE", ENOSYS: "ENOSYS",
        EPROTO: "EPROTO", EBADMSG: "EBADMSG", EOVERFLOW: "EOVERFLOW", ENOTSOCK: "ENOTSOCK",
        EMSGSIZE: "EMSGSIZE", EPROTONOSUPPORT: "EPROTONOSUPPORT", EOPNOTSUPP: "EOPNOTSUPP",
        EAFNOSUPPORT: "EAFNOSUPPORT", EADDRINUSE: "EADDRINUSE", ENETDOWN: "ENETDOWN", ENOBUFS: "ENOBUFS",
        ETIMEDOUT: "ETIMEDOUT", ECONNREFUSED: "ECONNREFUSED",
    ]
}
