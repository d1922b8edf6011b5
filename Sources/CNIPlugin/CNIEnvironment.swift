import SRIOVCore

/// The commands of the specification (SPEC.md, section 2).
public enum CNICommand: String, Sendable, CaseIterable {
    case add = "ADD"
    case del = "DEL"
    case check = "CHECK"
    case status = "STATUS"
    case gc = "GC"
    case version = "VERSION"
}

/// The protocol parameters a runtime passes in the environment (SPEC.md, section 2 "Parameters").
public struct CNIEnvironment: Sendable, Hashable {
    public var command: CNICommand
    public var containerID: String?
    public var netns: String?
    public var ifname: String?
    /// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`.
    public var args: [String: String]
    /// `CNI_PATH`, split on `:`.
    public var path: [String]
    /// Every variable, handed on unchanged to delegated plugins.
    public var variables: [String: String]

    /// Reads and checks the variables the command needs. Errors are code 4 and name the variable.
    public init(_ variables: [String: String]) throws(CNIError) {
        self.variables = variables
        guard let text = variables["CNI_COMMAND"], !text.isEmpty else {
            throw CNIError(
                .invalidEnvironment, "CNI_COMMAND is not set",
                details: "set CNI_COMMAND to one of ADD, DEL, CHECK, STATUS, GC, VERSION")
        }
        guard let command = CNICommand(rawValue: text) else {
            throw CNIError(
                .invalidEnvironment, "CNI_COMMAND=\(text) is not a CNI command",
                details: "set CNI_COMMAND to one of ADD, DEL, CHECK, STATUS, GC, VERSION")
        }
        self.command = command
        containerID = variables["CNI_CONTAINERID"].flatMap { $0.isEmpty ? nil : $0 }
        netns = variables["CNI_NETNS"].flatMap { $0.isEmpty ? nil : $0 }
        ifname = variables["CNI_IFNAME"].flatMap { $0.isEmpty ? nil : $0 }
        path = (variables["CNI_PATH"] ?? "").split(separator: ":").map(String.init)
        args = try Self.parseArgs(variables["CNI_ARGS"] ?? "")

        let needed: [String]
        switch command {
        case .add, .check: needed = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]
        case .del: needed = ["CNI_CONTAINERID", "CNI_IFNAME"]
        case .gc, .status, .version: needed = []
        }
        let missing = needed.filter { (variables[$0] ?? "").isEmpty }
        if !missing.isEmpty {
            throw CNIError(
                .invalidEnvironment, "\(missing.joined(separator: ", ")) not set",
                details: "CNI_COMMAND=\(command.rawValue) needs \(needed.joined(separator: ", "))")
        }
        // Only what the command uses is checked: runtimes fill the rest with placeholders (libcni validates a
        // configuration by running VERSION with CNI_NETNS=dummy).
        guard !needed.isEmpty else { return }
        if let containerID, !Self.isValidContainerID(containerID) {
            throw CNIError(
                .invalidEnvironment, "CNI_CONTAINERID=\(containerID) is not a container id",
                details: "it must start with a letter or digit, then letters, digits, '_', '.' or '-'")
        }
        if let ifname, !Attachment.isValidInterfaceName(ifname) {
            throw CNIError(
                .invalidEnvironment, "CNI_IFNAME=\(ifname) is not an interface name",
                details: "1 to 15 bytes, no '/', ':' or whitespace, not '.' or '..'")
        }
        if let netns, !netns.hasPrefix("/") {
            throw CNIError(
                .invalidEnvironment, "CNI_NETNS=\(netns) is not a path",
                details: "give the network namespace as an absolute path such as /run/netns/NAME")
        }
    }

    /// `CNI_ARGS`: `FOO=BAR;ABC=123`. An entry without `=` is refused (code 4).
    static func parseArgs(_ text: String) throws(CNIError) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: ";") where !pair.isEmpty {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw CNIError(
                    .invalidEnvironment, "CNI_ARGS has an entry without KEY=VALUE: \(pair)",
                    details: "CNI_ARGS is KEY=VALUE pairs separated by ';'")
            }
            result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return result
    }

    static func isValidContainerID(_ id: String) -> Bool {
        guard let first = id.unicodeScalars.first, first.isASCIIAlphanumeric else { return false }
        return id.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "_" || $0 == "." || $0 == "-" }
    }

    /// `cni:<CNI_CONTAINERID>/<CNI_IFNAME>`: the allocation's owner in sriovd.
    public var owner: String? {
        guard let containerID, let ifname else { return nil }
        return Self.owner(containerID: containerID, ifname: ifname)
    }

    public static func owner(containerID: String, ifname: String) -> String { "cni:\(containerID)/\(ifname)" }
}

extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}
