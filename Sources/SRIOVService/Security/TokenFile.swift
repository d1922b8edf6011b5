import FoundationEssentials
import Glibc
import SRIOVCore
import Synchronization

/// One line of the tokens file: a named token, its role, and the SHA-256 of the token (never the token).
public struct TokenEntry: Sendable, Equatable {
    public var name: String
    public var role: Role
    /// The 32-byte SHA-256 digest of the token's UTF-8 bytes.
    public var digest: [UInt8]

    public init(name: String, role: Role, digest: [UInt8]) {
        self.name = name
        self.role = role
        self.digest = digest
    }

    /// The line to put in the tokens file.
    public var line: String { "\(name) \(role) \(digest.lowercaseHex)" }
}

/// Why a tokens file was refused; names the line.
public struct TokenFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var line: Int?
    public var reason: String

    public var description: String {
        if let line { return "\(path):\(line): \(reason)" }
        return "\(path): \(reason)"
    }
}

/// The tokens file: one token a line, `NAME ROLE SHA256HEX`, separated by spaces or tabs. Blank lines and lines
/// starting with `#` are ignored. NAME is 1 to 64 of `A-Z a-z 0-9 . _ - @ :` and is what the audit records as
/// the actor; ROLE is `reader`, `operator` or `admin`; SHA256HEX is the 64-digit hex SHA-256 of the token.
/// Names and hashes must be unique. `sriovd token create NAME --role ROLE` prints a token and its line.
public enum TokenFile {
    static let nameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@:")

    /// Whether `name` may name a token: 1 to 64 of `A-Z a-z 0-9 . _ - @ :`.
    public static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.count) && name.allSatisfy(nameCharacters.contains)
    }

    /// Parses the text of a tokens file. `path` is only for messages.
    public static func parse(_ text: String, path: String = "tokens") throws(TokenFileError) -> [TokenEntry] {
        var entries: [TokenEntry] = []
        var names: Set<String> = []
        var digests: Set<[UInt8]> = []
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            func fail(_ reason: String) -> TokenFileError { TokenFileError(path: path, line: number, reason: reason) }
            guard fields.count == 3 else {
                throw fail("expected NAME ROLE SHA256, found \(fields.count) field(s)")
            }
            let name = String(fields[0])
            guard isValidName(name) else {
                throw fail("the name \"\(name)\" must be 1 to 64 of A-Z a-z 0-9 . _ - @ :")
            }
            guard let role = Role(rawValue: String(fields[1])) else {
                throw fail("the role \"\(fields[1])\" is not one of reader, operator, admin")
            }
            guard let digest = hexBytes(fields[2]), digest.count == 32 else {
                throw fail("the hash must be 64 hex digits (the SHA-256 of the token), not the token itself")
            }
            guard names.insert(name).inserted else { throw fail("the name \"\(name)\" appears twice") }
            guard digests.insert(digest).inserted else { throw fail("the same token hash appears twice") }
            entries.append(TokenEntry(name: name, role: role, digest: digest))
        }
        return entries
    }

    /// Reads and parses the tokens file at `path`. A file that its group or others may write is refused, as
    /// OpenSSH refuses such key files: whoever can write it can give a token of their own any role. The mode is
    /// read from the open file, so the text parsed is the text whose mode was checked.
    public static func load(path: String) throws(TokenFileError) -> [TokenEntry] {
        func fail(_ reason: String) -> TokenFileError { TokenFileError(path: path, line: nil, reason: reason) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("cannot be read (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw fail("cannot be read (\(String(cString: strerror(errno))))") }
        if let refusal = writableByOthers(mode: status.st_mode) { throw fail(refusal + "; run: chmod go-w \(path)") }
        guard let bytes = readAll(fd) else { throw fail("cannot be read (\(String(cString: strerror(errno))))") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw fail("is not UTF-8 text") }
        return try parse(text, path: path)
    }

    /// Why a file of `mode` may not hold tokens ("is writable by its group (mode 0664)"), or nil when neither its
    /// group nor others may write it.
    public static func writableByOthers(mode: mode_t) -> String? {
        let group = mode & S_IWGRP != 0
        let others = mode & S_IWOTH != 0
        guard group || others else { return nil }
        let who = group && others ? "its group and by others" : group ? "its group" : "others"
        let octal = String(mode & 0o7777, radix: 8)
        return "is writable by \(who) (mode \(String(repeating: "0", count: max(0, 4 - octal.count)) + octal)), "
            + "so anyone who can write it could give a token of their own any role"
    }

    /// The rest of the file `fd`, or nil when a read fails.
    private static func readAll(_ fd: Int32) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return nil }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
        }
    }

    static func hexBytes(_ text: some StringProtocol) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A new bearer token: 32 bytes from the system's CSPRNG, base64url without padding, prefixed `sriovd_` so that
/// secret scanners and people recognise it.
public struct GeneratedToken: Sendable {
    public let token: String
    public let entry: TokenEntry

    public init(name: String, role: Role) {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let encoded = Data(bytes).base64EncodedString()
            .replacing("+", with: "-")
            .replacing("/", with: "_")
            .replacing("=", with: "")
        token = "sriovd_" + encoded
        entry = TokenEntry(name: name, role: role, digest: TokenStore.digest(of: token))
    }
}

/// The identity a request was authenticated as.
public struct Identity: Sendable, Equatable {
    /// What the audit records as the actor.
    public var actor: String
    /// Nil: known, but allowed nothing (a Unix peer no rule maps).
    public var role: Role?
    /// Whether the caller presented a credential, a valid bearer token or a verified client certificate (rather
    /// than being known by its socket).
    public var hasCredential: Bool

    public init(actor: String, role: Role?, hasCredential: Bool = false) {
        self.actor = actor
        self.role = role
        self.hasCredential = hasCredential
    }
}

/// The tokens in force, replaceable at run time (SIGHUP re-reads the file). Only SHA-256 digests are kept.
public final class TokenStore: Sendable {
    /// The file the tokens come from; nil for a store built from entries.
    public let path: String?
    private let entries: Mutex<[TokenEntry]>

    /// Loads `path`; throws when it cannot be read or has a bad line.
    public init(path: String) throws(TokenFileError) {
        self.path = path
        entries = Mutex(try TokenFile.load(path: path))
    }

    public init(entries: [TokenEntry]) {
        path = nil
        self.entries = Mutex(entries)
    }

    /// How many tokens are in force.
    public var count: Int { entries.withLock { $0.count } }

    /// Re-reads the file. On failure the tokens in force stay, and the error says why. Returns the new count.
    @discardableResult
    public func reload() throws(TokenFileError) -> Int {
        guard let path else { return count }
        let fresh = try TokenFile.load(path: path)
        entries.withLock { $0 = fresh }
        return fresh.count
    }

    /// SHA-256 of the token's UTF-8 bytes.
    public static func digest(of token: String) -> [UInt8] {
        SHA256.digest(token.utf8)
    }

    /// The entry whose hash matches `token`, or nil. The presented token is hashed, then compared with every
    /// entry's digest in constant time (all bytes of all entries, no early exit).
    public func authenticate(_ token: String) -> TokenEntry? {
        let presented = Self.digest(of: token)
        let current = entries.withLock { $0 }
        var found: TokenEntry?
        for entry in current where Self.constantTimeEqual(entry.digest, presented) && found == nil {
            found = entry
        }
        return found
    }

    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
