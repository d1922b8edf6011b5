import FoundationEssentials
import Glibc

/// The real kernel's sysfs (or a captured copy of it), read and written with plain `open`/`read`/`write` calls.
///
/// `root` is the sysfs mount point: `/sys` on a host, `<state>/sys` for a capture, the simulator's folder for the
/// simulated host.
public struct KernelSysfs: SysfsBackend {
    /// The absolute path of the sysfs root, without a trailing slash.
    public let root: String

    /// Sysfs attributes are at most a page; captures and the simulator hold nothing bigger that is read.
    static let readLimit = 1 << 20

    public init(root: String = "/sys") {
        var trimmed = root
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed
    }

    public init(root: URL) {
        self.init(root: root.path)
    }

    public func readFile(_ path: String) throws(SysfsError) -> String {
        let full = try absolute(path, .read)
        let fd = retryingEINTR { open(full, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw SysfsError(errno: errno, operation: .read, path: path) }
        defer { close(fd) }
        return try Self.readAll(fd, path: path)
    }

    public func writeFile(_ path: String, _ value: String) throws(SysfsError) {
        let full = try absolute(path, .write)
        let fd = retryingEINTR { open(full, O_WRONLY | O_TRUNC | O_CLOEXEC) }
        guard fd >= 0 else { throw SysfsError(errno: errno, operation: .write, path: path) }
        defer { close(fd) }
        // A sysfs store sees exactly one write() of the whole value; never split it.
        let bytes = Array(value.utf8)
        let written = bytes.withUnsafeBytes { buffer in
            retryingEINTR { write(fd, buffer.baseAddress, buffer.count) }
        }
        if written < 0 { throw SysfsError(errno: errno, operation: .write, path: path) }
        if written != bytes.count { throw SysfsError(errno: EIO, operation: .write, path: path) }
    }

    public func listDirectory(_ path: String) throws(SysfsError) -> [String] {
        let full = try absolute(path, .list)
        guard let dir = opendir(full) else { throw SysfsError(errno: errno, operation: .list, path: path) }
        return try Self.names(in: dir, path: path)
    }

    public func readLink(_ path: String) throws(SysfsError) -> String {
        let full = try absolute(path, .readLink)
        return try Self.linkTarget(path: path) { buffer, size in readlink(full, buffer, size) }
    }

    /// The folder opened once (`O_DIRECTORY`, following a symlink to it), for reads relative to it.
    public func openFolder(_ path: String) throws(SysfsError) -> SysfsFolderHandle? {
        let full = try absolute(path, .list)
        let fd = retryingEINTR { open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw SysfsError(errno: errno, operation: .list, path: path) }
        return SysfsFolderHandle(fd: fd, path: path)
    }

    public func kind(of path: String) -> SysfsEntryKind? {
        guard let full = try? absolute(path, .stat) else { return nil }
        var info = stat()
        guard lstat(full, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFLNK: return .symlink
        case S_IFDIR: return .directory
        default: return .file
        }
    }

    public func fileExists(_ path: String) -> Bool {
        guard let full = try? absolute(path, .stat) else { return false }
        var info = stat()
        return stat(full, &info) == 0
    }

    /// The absolute path for a relative one; rejects absolute paths, empty components and `..`.
    func absolute(_ path: String, _ operation: SysfsError.Operation) throws(SysfsError) -> String {
        guard Self.isSafeRelative(path) else { throw SysfsError(errno: EINVAL, operation: operation, path: path) }
        return path.isEmpty ? root : root + "/" + path
    }

    /// No NUL, not absolute, and no empty, `.` or `..` component. One pass over the bytes: it runs on every
    /// sysfs access.
    package static func isSafeRelative(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { bytes in
            var componentLength = 0
            var dots = 0
            for byte in bytes {
                if byte == 0 { return false }
                if byte == UInt8(ascii: "/") {
                    if componentLength == 0 || componentLength == dots && dots <= 2 { return false }
                    componentLength = 0
                    dots = 0
                } else {
                    componentLength += 1
                    if byte == UInt8(ascii: ".") { dots += 1 }
                }
            }
            return bytes.isEmpty || !(componentLength == 0 || componentLength == dots && dots <= 2)
        }
    }

    // MARK: - Shared by path reads and folder-relative reads

    /// Everything `fd` reads, up to `readLimit`.
    static func readAll(_ fd: Int32, path: String) throws(SysfsError) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < readLimit {
            let count = chunk.withUnsafeMutableBytes { buffer in
                retryingEINTR { read(fd, buffer.baseAddress, buffer.count) }
            }
            if count < 0 { throw SysfsError(errno: errno, operation: .read, path: path) }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The names of an open directory stream without `.` and `..`; closes it.
    static func names(in dir: OpaquePointer, path: String) throws(SysfsError) -> [String] {
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw SysfsError(errno: errno, operation: .list, path: path) }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A link's target as `call` (readlink or readlinkat into a buffer of the given size) returns it.
    static func linkTarget(
        path: String, _ call: (UnsafeMutablePointer<CChar>, Int) -> Int
    ) throws(SysfsError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = buffer.withUnsafeMutableBufferPointer { pointer in call(pointer.baseAddress!, pointer.count - 1) }
        if count < 0 { throw SysfsError(errno: errno, operation: .readLink, path: path) }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Calls `body` again while it fails with EINTR.
@inline(__always)
package func retryingEINTR<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result >= 0 || errno != EINTR { return result }
    }
}
