import ArgumentParser

/// `SRIOVD_*` environment variables as command-line options, applied before parsing: `SRIOVD_LISTEN=0.0.0.0:8080`
/// is `--listen 0.0.0.0:8080`, `SRIOVD_NO_ACCESS_LOG=1` is `--no-access-log`. An option given on the command line
/// wins over its variable. Only the options of the subcommand being run are taken; any other `SRIOVD_*` variable
/// is reported on standard error and ignored.
enum EnvironmentOptions {
    struct Accepted {
        var options: Set<String>
        var flags: Set<String>
    }

    /// What each subcommand that reads the environment takes, read from its own help so that a new option is
    /// settable by its variable without another list to keep. `serve` is also the default subcommand.
    static let bySubcommand: [String: Accepted] = [
        "serve": accepted(by: Serve.self),
        "inventory": accepted(by: Inventory.self),
        "reconcile": accepted(by: Reconcile.self),
        "backup": accepted(by: BackupCommand.self),
    ]

    /// The long options of `command` from its help: `--name <value>` is an option, `--name` alone a flag.
    static func accepted(by command: any ParsableCommand.Type) -> Accepted {
        let help = SRIOVDaemon.helpMessage(for: command, columns: 10_000)
        var accepted = Accepted(options: [], flags: [])
        for line in help.split(separator: "\n") {
            guard let match = line.firstMatch(of: #/^\s+(?:-[a-zA-Z], )?--([a-z0-9][a-z0-9-]*)( <[^>]+>)?/#) else {
                continue
            }
            let name = String(match.1)
            if name == "help" || name == "version" { continue }
            if match.2 == nil { accepted.flags.insert(name) } else { accepted.options.insert(name) }
        }
        return accepted
    }

    /// Subcommands that take no environment (anything else is treated as the default, `serve`).
    static let otherSubcommands: Set<String> = ["simulate", "token", "help"]

    /// An environment value that cannot be read.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `arguments` (without the program name) with the environment's options added, and warnings to print.
    static func apply(to arguments: [String], environment: [String: String]) throws -> (
        arguments: [String], warnings: [String]
    ) {
        let variables = environment.filter { $0.key.hasPrefix("SRIOVD_") }
        guard !variables.isEmpty else { return (arguments, []) }
        let subcommand: String
        let insertAt: Int
        if let first = arguments.first, !first.hasPrefix("-") {
            if otherSubcommands.contains(first) || bySubcommand[first] == nil { return (arguments, []) }
            subcommand = first
            insertAt = 1
        } else {
            if arguments.contains(where: { ["--help", "-h", "--version"].contains($0) }) { return (arguments, []) }
            subcommand = "serve"
            insertAt = 0
        }
        let accepted = bySubcommand[subcommand]!
        var added: [String] = []
        var warnings: [String] = []
        for (name, value) in variables.sorted(by: { $0.key < $1.key }) {
            let option = name.dropFirst("SRIOVD_".count).lowercased().replacing("_", with: "-")
            let onCommandLine = arguments.contains { $0 == "--" + option || $0.hasPrefix("--" + option + "=") }
            if accepted.flags.contains(option) {
                switch value.lowercased() {
                case "1", "true", "yes", "on":
                    if !onCommandLine { added.append("--" + option) }
                case "0", "false", "no", "off", "":
                    break
                default:
                    throw Failure(description: "\(name)=\(value): a flag takes 1, true, yes, on, 0, false, no or off")
                }
            } else if accepted.options.contains(option) {
                if !onCommandLine { added += ["--" + option, value] }
            } else {
                warnings.append("sriovd: ignoring \(name): \(subcommand) has no --\(option) option")
            }
        }
        var result = arguments
        result.insert(contentsOf: added, at: insertAt)
        return (result, warnings)
    }
}
