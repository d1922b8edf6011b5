import Glibc

/// A failed sysfs operation: the errno the kernel (or the simulated kernel) returned, the operation and the path
/// relative to the sysfs root.
public struct SysfsError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was being done when the error came back.
    public enum Operation: String, Hashable, Sendable {
        case read
        case write
        case list
        case readLink
        case stat
    }

    public var errno: Int32
    public var operation: Operation
    /// The path relative to the sysfs root, e.g. `bus/pci/devices/0000:3b:00.0/sriov_numvfs`.
    public var path: String

    public init(errno: Int32, operation: Operation, path: String) {
        self.errno = errno
        self.operation = operation
        self.path = path
    }

    /// The symbolic errno name, e.g. `ERANGE`; `E<number>` for values without a name here.
    public var name: String { Self.errnoName(errno) }

    /// True when the path (or part of it) does not exist: the device or attribute is gone.
    public var isNotFound: Bool { errno == ENOENT || errno == ENOTDIR }

    public var description: String {
        "sysfs \(operation.rawValue) \(path): \(name) (\(String(cString: strerror(errno))))"
    }

    /// Symbolic names of the errno values sysfs writes and reads return.
    public static func errnoName(_ value: Int32) -> String {
        switch value {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case EINTR: return "EINTR"
        case EIO: return "EIO"
        case ENXIO: return "ENXIO"
        case E2BIG: return "E2BIG"
        case EBADF: return "EBADF"
        case EAGAIN: return "EAGAIN"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EFAULT: return "EFAULT"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case ENODEV: return "ENODEV"
        case ENOTDIR: return "ENOTDIR"
        case EISDIR: return "EISDIR"
        case EINVAL: return "EINVAL"
        case ENOSPC: return "ENOSPC"
        case EROFS: return "EROFS"
        case ERANGE: return "ERANGE"
        case ENAMETOOLONG: return "ENAMETOOLONG"
        case ELOOP: return "ELOOP"
        case ENOSYS: return "ENOSYS"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        case EPROTONOSUPPORT: return "EPROTONOSUPPORT"
        case ETIMEDOUT: return "ETIMEDOUT"
        default: return "E\(value)"
        }
    }
}
