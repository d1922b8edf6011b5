import FoundationEssentials
import Glibc
import HTTPServer

/// Turns a Unix-socket peer's uid and groups into a role.
///
/// Written as comma-separated rules, `uid:0=admin,gid:kvm=operator,user:virt=operator,group:wheel=reader`: `uid:`
/// and `gid:` take a number or a name, `user:` and `group:` a name; names are looked up when the map is built.
/// A rule for the peer's uid decides alone (`uid:0=operator` demotes root). Otherwise root (uid 0) is admin.
/// Otherwise the highest role of the rules for any of its groups (its primary gid from SO_PEERCRED and its
/// supplementary groups from `/proc/PID/status`) applies, and a peer no rule names has no role (403).
public struct UnixRoleMap: Sendable, Equatable {
    public private(set) var users: [UInt32: Role] = [:]
    public private(set) var groups: [UInt32: Role] = [:]

    public init(users: [UInt32: Role] = [:], groups: [UInt32: Role] = [:]) {
        self.users = users
        self.groups = groups
    }

    /// Why a rule was refused.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var rule: String
        public var reason: String
        public var description: String { "unix role rule \"\(rule)\": \(reason)" }
    }

    /// Parses `uid:0=admin,gid:kvm=operator`. Several specs (repeated options, file lines) may be joined by
    /// commas or newlines; `#` starts a comment line.
    public init(parsing spec: String) throws(ParseError) {
        let rules = spec.split(whereSeparator: { $0 == "," || $0 == "\n" })
            .map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        for rule in rules {
            guard let equals = rule.lastIndex(of: "="), let colon = rule.firstIndex(of: ":"), colon < equals else {
                throw ParseError(rule: rule, reason: "expected uid:ID=ROLE or gid:ID=ROLE")
            }
            let kind = rule[..<colon]
            let subject = String(rule[rule.index(after: colon)..<equals])
            guard let role = Role(rawValue: String(rule[rule.index(after: equals)...])) else {
                throw ParseError(rule: rule, reason: "the role must be reader, operator or admin")
            }
            switch kind {
            case "uid", "user":
                guard let uid = (kind == "uid" ? UInt32(subject) : nil) ?? Self.userID(subject) else {
                    throw ParseError(rule: rule, reason: "no user \"\(subject)\" on this host")
                }
                users[uid] = role
            case "gid", "group":
                guard let gid = (kind == "gid" ? UInt32(subject) : nil) ?? Self.groupID(subject) else {
                    throw ParseError(rule: rule, reason: "no group \"\(subject)\" on this host")
                }
                groups[gid] = role
            default:
                throw ParseError(rule: rule, reason: "the kind must be uid, gid, user or group")
            }
        }
    }

    /// The role of a peer with these credentials; `supplementaryGroups` are its groups besides the primary one.
    public func role(uid: UInt32, gid: UInt32, supplementaryGroups: [UInt32] = []) -> Role? {
        if let role = users[uid] { return role }
        if uid == 0 { return .admin }
        return ([gid] + supplementaryGroups).compactMap { groups[$0] }.max()
    }

    /// The role of a connected peer, reading its supplementary groups from /proc when group rules exist.
    public func role(for credentials: PeerCredentials) -> Role? {
        let decided = groups.isEmpty || users[credentials.uid] != nil || credentials.uid == 0
        let extra = decided ? [] : Self.supplementaryGroups(pid: credentials.pid)
        return role(uid: credentials.uid, gid: credentials.gid, supplementaryGroups: extra)
    }

    /// The uid of a user name, from the system's user database.
    public static func userID(_ name: String) -> UInt32? {
        guard let entry = getpwnam(name) else { return nil }
        return entry.pointee.pw_uid
    }

    /// The gid of a group name, from the system's group database.
    public static func groupID(_ name: String) -> UInt32? {
        guard let entry = getgrnam(name) else { return nil }
        return entry.pointee.gr_gid
    }

    /// The `Groups:` line of /proc/PID/status; empty when the process is gone.
    static func supplementaryGroups(pid: Int32) -> [UInt32] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("Groups:") {
            return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
                .compactMap { UInt32($0) }
        }
        return []
    }

    /// `uid=0,pid=4242,comm=kubelet`: the audit actor of a Unix-socket peer. The command name comes from
    /// /proc/PID/comm; characters that would blur the format become `_`.
    public static func actor(for credentials: PeerCredentials) -> String {
        let raw = (try? String(contentsOfFile: "/proc/\(credentials.pid)/comm", encoding: .utf8)) ?? ""
        let comm = String(
            raw.trimmingWhitespace().map { character -> Character in
                character.isLetter || character.isNumber || "._-:/@+".contains(character) ? character : "_"
            })
        return "uid=\(credentials.uid),pid=\(credentials.pid),comm=\(comm.isEmpty ? "?" : comm)"
    }
}
