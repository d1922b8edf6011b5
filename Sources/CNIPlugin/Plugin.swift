import FoundationEssentials
import Netlink
import SRIOVCore

/// What one run of the plugin prints and how it exits.
public struct PluginOutput: Sendable {
    public var exitStatus: Int32
    public var stdout: [UInt8]
    /// Log lines for stderr.
    public var log: [String]
}

/// The plugin: the specification's commands over sriovd and rtnetlink. `run` is the whole program but for the
/// process's own input and output.
public struct Plugin: Sendable {
    let environment: CNIEnvironment
    let config: NetworkConfig
    let sriovd: SRIOVDClient
    let log: Log
    let timing: PhaseTiming

    /// Lines for stderr, collected while the command runs.
    final class Log: @unchecked Sendable {
        var lines: [String] = []
        func callAsFunction(_ line: String) { lines.append(line) }
    }

    public static func run(
        environment variables: [String: String], stdin: [UInt8], timing: PhaseTiming = PhaseTiming()
    ) -> PluginOutput {
        var output = run(variables, stdin: stdin, log: Log(), timing: timing)
        if variables["SRIOVD_CNI_TIMING"] == "1" {
            output.log.append("sriovd-cni: timing \(variables["CNI_COMMAND"] ?? "") \(timing.line)")
        }
        return output
    }

    static func run(_ variables: [String: String], stdin: [UInt8], log: Log, timing: PhaseTiming) -> PluginOutput {
        var version = (try? JSON.parse(stdin))?["cniVersion"]?.string ?? CNIVersion.latest
        if !CNIVersion.supported.contains(version) { version = CNIVersion.latest }
        do {
            let environment = try CNIEnvironment(variables)
            let config = try NetworkConfig(stdin, command: environment.command)
            if environment.command == .version {
                let asked = config.cniVersion.isEmpty ? CNIVersion.latest : config.cniVersion
                let answer = JSON.object([
                    "cniVersion": .string(asked), "supportedVersions": .array(CNIVersion.supported.map(JSON.string)),
                ])
                return PluginOutput(exitStatus: 0, stdout: answer.bytes, log: log.lines)
            }
            let plugin = Plugin(
                environment: environment, config: config, sriovd: SRIOVDClient(socket: config.socket, timing: timing),
                log: log, timing: timing)
            let output: [UInt8]
            switch environment.command {
            case .add: output = try plugin.add()
            case .del: output = try plugin.del()
            case .check: output = try plugin.check()
            case .status: output = try plugin.status()
            case .gc: output = try plugin.gc()
            case .version: output = []
            }
            return PluginOutput(exitStatus: 0, stdout: output, log: log.lines)
        } catch {
            log("sriovd-cni: \(error)")
            var document = error.document(cniVersion: version).bytes
            document.append(UInt8(ascii: "\n"))
            return PluginOutput(exitStatus: 1, stdout: document, log: log.lines)
        }
    }

    // MARK: - Shared steps

    /// The allocations of this attachment that still hold their VF.
    func holdingAllocations() throws(CNIError) -> [SRIOVDClient.Allocation] {
        try sriovd.allocations(owner: environment.owner ?? "").filter(\.holdsVF)
    }

    /// The Idempotency-Key of the attachment's n-th allocation: a retried ADD replays its first answer, and an ADD
    /// after a DEL (a new attachment under the same names) gets a new allocation.
    static func idempotencyKey(owner: String, previous: Int) -> String {
        "cni-" + String(SHA256.hex(Array(owner.utf8)).prefix(32)) + "-\(previous)"
    }

    /// The name a netdev has while it moves, unique per attachment and short enough for `IFNAMSIZ`.
    static func temporaryName(owner: String) -> String { "sv" + String(SHA256.hex(Array(owner.utf8)).prefix(12)) }

    func namespace(_ path: String) throws(CNIError) -> NetworkNamespace {
        do {
            return try timing.measure("netns-open") { () throws(NetlinkError) in try NetworkNamespace(path: path) }
        } catch {
            throw CNIError(
                .invalidEnvironment, "CNI_NETNS=\(path) cannot be opened",
                details: "\(error); give the path of the container's network namespace")
        }
    }

    func netlink(_ namespace: NetworkNamespace) throws(CNIError) -> RTNetlinkClient {
        do {
            return try timing.measure("netlink-socket") { () throws(NetlinkError) in try namespace.netlink() }
        } catch {
            throw CNIError(.interfaceFailure, "no rtnetlink in \(namespace.path)", details: "\(error)")
        }
    }

    /// Runs a namespace or rtnetlink step, its time added to the phase `name`.
    func step<T>(_ name: String, _ body: () throws(NetlinkError) -> T) throws(NetlinkError) -> T {
        try timing.measure(name, body)
    }

    func interfaceFailure(_ what: String, _ error: NetlinkError) -> CNIError {
        CNIError(.interfaceFailure, what, details: error.description)
    }
}

/// Undo steps collected while ADD goes on, run in reverse if it fails (the Incus pattern).
struct Undo {
    private var steps: [(String, () throws -> Void)] = []

    mutating func add(_ what: String, _ step: @escaping () throws -> Void) { steps.append((what, step)) }

    func run(_ log: Plugin.Log) {
        for (what, step) in steps.reversed() {
            do {
                try step()
                log("sriovd-cni: undone: \(what)")
            } catch {
                log("sriovd-cni: could not undo \(what): \(error)")
            }
        }
    }
}
