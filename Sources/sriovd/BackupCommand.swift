import ArgumentParser
import SRIOVService
import SRIOVStore

/// `sriovd backup OUT`: a consistent copy of the live database.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database consistently while the daemon serves (SQLite's online backup API).",
        discussion: """
            The copy is the database as of one commit, fsynced and checked (PRAGMA quick_check) before it is \
            renamed to OUT. To restore: stop sriovd, put the copy in place of the database (removing its -wal and \
            -shm files), start sriovd, and read GET /reconcile (see the README).
            """)

    @Argument(help: "Where to write the copy. It must not exist; its folder must.")
    var out: String

    @Option(help: ArgumentHelp("The database to copy.", valueName: "path"))
    var db: String = "/var/lib/sriovd/sriovd.db"

    func run() throws {
        do {
            let summary = try DatabaseBackup.copy(from: db, to: out)
            Console.output(
                "sriovd backup: \(out): \(summary.bytes) bytes, \(summary.pages) pages, migration "
                    + "\(summary.migrations.last ?? "none"), \(summary.allocations) allocations, "
                    + "\(summary.auditEvents) audit events; quick_check ok")
        } catch {
            Console.error("sriovd backup: \(error)")
            throw ExitCode(1)
        }
    }
}
