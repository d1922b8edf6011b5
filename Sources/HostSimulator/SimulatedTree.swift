import Glibc
import SRIOVCore
import SRIOVHardware

/// Plain file operations on the simulated tree, relative to its root. Used only by the simulated kernel and the
/// simulated host builder: this is the kernel side of the sysfs boundary, not a way for callers to reach paths.
struct SimulatedTree: Sendable {
    let root: String

    func absolute(_ path: String) -> String { path.isEmpty ? root : root + "/" + path }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(absolute(path), &info) == 0
    }

    func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(absolute(path), &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The permission bits of what the path names (following links); nil when absent.
    func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(absolute(path), &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }

    func makeDirectories(_ path: String) throws(SysfsError) {
        var current = ""
        for part in path.split(separator: "/") {
            current += current.isEmpty ? String(part) : "/" + part
            if mkdir(absolute(current), 0o755) != 0 && errno != EEXIST {
                throw SysfsError(errno: errno, operation: .write, path: current)
            }
        }
    }

    /// Replaces the file's content atomically (a temporary file renamed over it), so a concurrent reader sees the old
    /// or the new content, never a mix.
    func putFile(_ path: String, _ content: String, mode: mode_t = 0o444) throws(SysfsError) {
        let temporary = absolute(path) + ".sim-tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SysfsError(errno: errno, operation: .write, path: path) }
        let bytes = Array(content.utf8)
        let written = bytes.withUnsafeBytes { buffer in retryingEINTR { write(fd, buffer.baseAddress, buffer.count) } }
        let writeErrno = errno
        close(fd)
        guard written == bytes.count else {
            unlink(temporary)
            throw SysfsError(errno: written < 0 ? writeErrno : EIO, operation: .write, path: path)
        }
        fchmodOrChmod(temporary, mode)
        guard rename(temporary, absolute(path)) == 0 else {
            let renameErrno = errno
            unlink(temporary)
            throw SysfsError(errno: renameErrno, operation: .write, path: path)
        }
    }

    /// Writes the content keeping the file's current mode (for attributes rewritten in place).
    func replaceFile(_ path: String, _ content: String) throws(SysfsError) {
        try putFile(path, content, mode: mode(path) ?? 0o644)
    }

    func readText(_ path: String) -> String? {
        try? KernelSysfs(root: root).readFile(path)
    }

    /// The file's content without trailing newline or spaces.
    func readLine(_ path: String) -> String? {
        guard var text = readText(path) else { return nil }
        while let last = text.last, last == "\n" || last == " " { text.removeLast() }
        return text
    }

    func readInt(_ path: String) -> Int? { readLine(path).flatMap { Int($0) } }

    func readLink(_ path: String) -> String? {
        try? KernelSysfs(root: root).readLink(path)
    }

    /// Creates (or replaces) a symlink.
    func link(_ path: String, to target: String) throws(SysfsError) {
        unlink(absolute(path))
        guard symlink(target, absolute(path)) == 0 else {
            throw SysfsError(errno: errno, operation: .write, path: path)
        }
    }

    /// Removes a file, a link or a whole folder; nothing there is fine.
    func remove(_ path: String) {
        let full = absolute(path)
        var info = stat()
        guard lstat(full, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in (try? KernelSysfs(root: root).listDirectory(path)) ?? [] {
                remove(path + "/" + name)
            }
            rmdir(full)
        } else {
            unlink(full)
        }
    }

    func list(_ path: String) -> [String] {
        (try? KernelSysfs(root: root).listDirectory(path)) ?? []
    }

    private func fchmodOrChmod(_ path: String, _ mode: mode_t) {
        chmod(path, mode)
    }
}

/// Lexical path helpers for the relative symlink targets sysfs uses.
enum TreePath {
    /// `base` joined with a relative `target`, `..` resolved lexically: `bus/pci/devices` + `../../../devices/x` is
    /// `devices/x`.
    static func resolve(_ target: String, from base: String) -> String {
        var parts = base.split(separator: "/").map(String.init)
        for part in target.split(separator: "/") {
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
            } else if part != "." {
                parts.append(String(part))
            }
        }
        return parts.joined(separator: "/")
    }

    /// `../` once per component of `folder`: the way from that folder back up to the sysfs root.
    static func upToRoot(from folder: String) -> String {
        String(repeating: "../", count: folder.split(separator: "/").count)
    }
}
