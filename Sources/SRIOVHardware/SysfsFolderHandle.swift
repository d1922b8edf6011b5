import Glibc

/// A sysfs folder opened once, whose entries are then read relative to it (`openat`, `readlinkat`): the kernel
/// resolves only the entry's own name, not the whole path from the root again. A device folder holds about ten
/// files a scan reads, so a host of thousands of VFs saves most of its path lookups.
///
/// Names are one or two components (`vendor`, `net`, `virtfn3`), checked like every backend path; `Sysfs` is the one
/// place that builds them. The descriptor closes when the handle goes.
public final class SysfsFolderHandle {
    let fd: Int32
    /// The folder's path relative to the sysfs root, for errors.
    public let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// The whole content of the file `name` in the folder.
    public func readFile(_ name: String) throws(SysfsError) -> String {
        let entry = try checked(name, .read)
        let file = retryingEINTR { openat(fd, name, O_RDONLY | O_CLOEXEC) }
        guard file >= 0 else { throw SysfsError(errno: errno, operation: .read, path: entry) }
        defer { close(file) }
        return try KernelSysfs.readAll(file, path: entry)
    }

    /// The raw target of the symlink `name` in the folder.
    public func readLink(_ name: String) throws(SysfsError) -> String {
        let entry = try checked(name, .readLink)
        return try KernelSysfs.linkTarget(path: entry) { buffer, size in readlinkat(fd, name, buffer, size) }
    }

    /// Names in the folder `name` inside this one (the folder itself for ""), without `.` and `..`.
    public func listDirectory(_ name: String) throws(SysfsError) -> [String] {
        let entry = name.isEmpty ? path : try checked(name, .list)
        let folder = retryingEINTR { openat(fd, name.isEmpty ? "." : name, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard folder >= 0 else { throw SysfsError(errno: errno, operation: .list, path: entry) }
        guard let dir = fdopendir(folder) else {
            let code = errno
            close(folder)
            throw SysfsError(errno: code, operation: .list, path: entry)
        }
        return try KernelSysfs.names(in: dir, path: entry)
    }

    /// The entry's path relative to the sysfs root; EINVAL for an empty, absolute or escaping name.
    private func checked(_ name: String, _ operation: SysfsError.Operation) throws(SysfsError) -> String {
        let full = path + "/" + name
        guard !name.isEmpty, KernelSysfs.isSafeRelative(name) else {
            throw SysfsError(errno: EINVAL, operation: operation, path: full)
        }
        return full
    }
}
