import ArgumentParser
import SRIOVService

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage bearer tokens for the tokens file.", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new random token, and the line that lets it in, for the tokens file.",
            discussion: """
                The token (32 random bytes, base64url) is printed once and stored nowhere. The line holds only its \
                SHA-256: append it to the file given with --tokens, then send sriovd SIGHUP (systemctl reload sriovd).
                """)

        @Argument(help: "The token's name: what the audit records as the actor (A-Z a-z 0-9 . _ - @ :).")
        var name: String

        @Option(help: "The role the token gives: reader, operator or admin.")
        var role: Role

        func validate() throws {
            guard TokenFile.isValidName(name) else {
                throw ValidationError("NAME must be 1 to 64 of A-Z a-z 0-9 . _ - @ :")
            }
        }

        func run() throws {
            let generated = GeneratedToken(name: name, role: role)
            print("# The token; give it to the client as \"Authorization: Bearer TOKEN\". It is not shown again:")
            print(generated.token)
            print("# The line for the tokens file (then: systemctl reload sriovd, or kill -HUP the daemon):")
            print(generated.entry.line)
        }
    }
}

extension Role: ExpressibleByArgument {}
