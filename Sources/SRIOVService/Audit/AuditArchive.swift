import FoundationEssentials
import Glibc
import SRIOVCore

/// The audit archive: a folder of NDJSON files, one a month (`audit-2026-11.ndjson`, by each event's `at`), each
/// line one event as `GET /audit` serves it.
///
/// Appending is idempotent, so a run cut off anywhere (a crash between archiving and deleting, or in the middle of a
/// write) loses nothing and repeats nothing when the next run archives the same events again: a torn last line is cut
/// off first, and events up to the id a file already ends with are skipped when that last line is the same event as
/// the store's row of that id. Should they differ (a database restored from an older backup reuses ids), nothing is
/// skipped: an event may then be archived twice, never lost.
struct AuditArchive: Sendable {
    let directory: String

    enum ArchiveError: Error, CustomStringConvertible {
        case system(String, path: String, errno: Int32)

        var description: String {
            switch self {
            case .system(let call, let path, let code): "\(call) \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    /// The month file of an event stamped `at` (RFC 3339 UTC: its first seven characters are the month).
    static func fileName(at: String) -> String { "audit-\(at.prefix(7)).ndjson" }

    /// One event as an archive line (with its newline).
    static func line(_ event: AuditEvent) -> [UInt8] { JSONBody.encode(AuditEventView(event: event)) + [0x0A] }

    /// Opens the folder (creating it) for one run over the store's events from `oldest` on.
    func begin(oldest: Int64) throws(ArchiveError) -> AuditArchiveRun {
        if mkdir(directory, 0o750) != 0 && errno != EEXIST { throw .system("mkdir", path: directory, errno: errno) }
        return AuditArchiveRun(directory: directory, oldest: oldest)
    }
}

/// The files one retention run appends to; `finish` makes them durable.
final class AuditArchiveRun {
    private struct OpenFile {
        var fd: Int32
        /// Events of this file with an id up to this one are in it already.
        var skipThrough: Int64
    }

    let directory: String
    /// The store's oldest event when the run began.
    let oldest: Int64
    private var files: [String: OpenFile] = [:]
    private var createdAny = false
    /// Lines appended, per file name.
    private(set) var appended: [String: Int] = [:]

    init(directory: String, oldest: Int64) {
        self.directory = directory
        self.oldest = oldest
    }

    deinit {
        for file in files.values { close(file.fd) }
    }

    /// Appends `event` to its month file unless the file holds it already. `stored` gives the store's event of an
    /// id (nil when gone), to tell whether a file's last line is the same event.
    func append(_ event: AuditEvent, stored: (Int64) throws -> AuditEvent?) throws {
        let name = AuditArchive.fileName(at: event.at)
        var file: OpenFile
        if let open = files[name] {
            file = open
        } else {
            file = try openFile(name, stored: stored)
            files[name] = file
        }
        guard event.id > file.skipThrough else { return }
        try write(AuditArchive.line(event), to: file.fd, name: name)
        appended[name, default: 0] += 1
    }

    /// fsyncs every file written and, when one was created, the folder.
    func finish() throws(AuditArchive.ArchiveError) {
        for (name, file) in files where fsync(file.fd) != 0 {
            throw .system("fsync", path: directory + "/" + name, errno: errno)
        }
        if createdAny {
            let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw .system("open", path: directory, errno: errno) }
            defer { close(fd) }
            guard fsync(fd) == 0 else { throw .system("fsync", path: directory, errno: errno) }
        }
    }

    private func openFile(_ name: String, stored: (Int64) throws -> AuditEvent?) throws -> OpenFile {
        let path = directory + "/" + name
        let existed = access(path, F_OK) == 0
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw AuditArchive.ArchiveError.system("open", path: path, errno: errno) }
        if !existed { createdAny = true }
        do {
            let tail = try ArchiveTail.read(fd: fd, path: path)
            if tail.tornBytes > 0, ftruncate(fd, off_t(tail.keep)) != 0 {
                throw AuditArchive.ArchiveError.system("ftruncate", path: path, errno: errno)
            }
            guard lseek(fd, 0, SEEK_END) >= 0 else {
                throw AuditArchive.ArchiveError.system("lseek", path: path, errno: errno)
            }
            return OpenFile(fd: fd, skipThrough: try skipThrough(tail.lastLine, stored: stored))
        } catch {
            close(fd)
            throw error
        }
    }

    /// The id up to which the file holds this store's events: its last line's, when that line is the store's event
    /// of that id, or when the store has no event of that id that a run could archive again (it is older than every
    /// event left). Otherwise 0: the histories differ, and nothing is skipped.
    private func skipThrough(_ lastLine: [UInt8]?, stored: (Int64) throws -> AuditEvent?) throws -> Int64 {
        guard let lastLine, let archived = try? JSONDecoder().decode(ArchivedIdentity.self, from: Data(lastLine))
        else { return 0 }
        guard let event = try stored(archived.id) else { return archived.id < oldest ? archived.id : 0 }
        return archived.matches(event) ? archived.id : 0
    }

    private func write(_ bytes: [UInt8], to fd: Int32, name: String) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw AuditArchive.ArchiveError.system("write", path: directory + "/" + name, errno: errno)
            }
            offset += written
        }
    }
}

/// What identifies an archived event: enough to tell the store's event of the same id from another one.
private struct ArchivedIdentity: Decodable {
    var id: Int64
    var at: String
    var actor: String
    var action: String
    var target: String

    func matches(_ event: AuditEvent) -> Bool {
        id == event.id && at == event.at && actor == event.actor && action == event.action && target == event.target
    }
}

/// The end of an archive file: its last complete line, and a torn line after it (a write cut off).
struct ArchiveTail {
    /// The file's length up to and including its last newline.
    var keep: Int
    /// Bytes after the last newline.
    var tornBytes: Int
    /// The last complete line, without its newline; nil in an empty file.
    var lastLine: [UInt8]?

    static let chunk = 64 * 1024

    /// Reads backwards from the end until the last complete line is whole.
    static func read(fd: Int32, path: String) throws(AuditArchive.ArchiveError) -> ArchiveTail {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system("fstat", path: path, errno: errno) }
        let size = Int(info.st_size)
        var suffix: [UInt8] = []
        var start = size
        while start > 0 {
            let from = max(0, start - chunk)
            var buffer = [UInt8](repeating: 0, count: start - from)
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(from)) }
            guard count == buffer.count else { throw .system("pread", path: path, errno: count < 0 ? errno : EIO) }
            suffix = buffer + suffix
            start = from
            // Done once a newline precedes the last complete line (or the file's start is reached).
            if let last = suffix.lastIndex(of: 0x0A), suffix[..<last].contains(0x0A) { break }
        }
        guard let lastNewline = suffix.lastIndex(of: 0x0A) else {
            return ArchiveTail(keep: 0, tornBytes: size, lastLine: nil)
        }
        let lineStart = suffix[..<lastNewline].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        return ArchiveTail(
            keep: start + lastNewline + 1, tornBytes: suffix.count - lastNewline - 1,
            lastLine: Array(suffix[lineStart..<lastNewline]))
    }
}
