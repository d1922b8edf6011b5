import ArgumentParser
import FoundationEssentials
import Glibc
import Logging
import SRIOVHardware
import SRIOVService
import SRIOVStore

struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the database with the hardware and print what reconciliation would do.")

    @OptionGroup var host: HostOptions

    @Option(help: "The SQLite database. Default: /var/lib/sriovd/sriovd.db, or DIR/sriovd.db with --simulate DIR.")
    var db: String?

    @Flag(help: "Print the plan without touching anything. Required: a running daemon reconciles on its own.")
    var dryRun = false

    func run() async throws {
        guard dryRun else {
            throw ValidationError(
                "only --dry-run is supported here; the daemon reconciles at start and on POST /reconcile")
        }
        let hardware = try host.makeHost()
        let path = db ?? host.simulate.map { $0 + "/sriovd.db" } ?? "/var/lib/sriovd/sriovd.db"
        let store = try Store(path: path)
        defer { store.close() }
        let core = ServiceCore(
            store: store, inventory: InventoryCache(scanner: HostScanner(sysfs: hardware.sysfs)), host: hardware,
            writeTimeout: .seconds(10), logger: Logger(label: "sriovd.reconcile"))
        let report = try await StartupRecovery(core: core).plan()
        if report.lines.isEmpty {
            print("nothing to do")
        } else {
            for line in report.lines { print(line) }
        }
    }
}
