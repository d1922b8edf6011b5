import ArgumentParser
import FoundationEssentials
import Glibc
import SRIOVService

@main
struct SRIOVDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sriovd",
        abstract: "Manages PCI SR-IOV on this host and serves it as a REST/JSON API.",
        discussion: """
            Every option of serve (and inventory) can also come from an SRIOVD_* environment variable: \
            SRIOVD_LISTEN for --listen, SRIOVD_NO_ACCESS_LOG=1 for --no-access-log. The command line wins.
            """,
        version: "0.1.0",
        subcommands: [Serve.self, Inventory.self, Reconcile.self, BackupCommand.self, Simulate.self, Token.self],
        defaultSubcommand: Serve.self
    )

    /// Parses the command line with the `SRIOVD_*` environment applied first (swift-argument-parser has no
    /// environment support of its own), then runs the chosen subcommand.
    static func main() async {
        let arguments: [String]
        do {
            let applied = try EnvironmentOptions.apply(
                to: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
            for warning in applied.warnings { Console.error(warning) }
            arguments = applied.arguments
        } catch {
            Console.error("sriovd: \(error)")
            Glibc.exit(64)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
