import ArgumentParser
import Dispatch
import Foundation
import HTTPServer
import Logging
import SRIOVCore
import SRIOVHardware
import SRIOVService
import SRIOVStore

#if canImport(Glibc)
    import Glibc
#endif

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon and serve the API.")

    @OptionGroup var host: HostOptions

    @Option(help: "TCP address to listen on, HOST:PORT. Port 0 picks a free port.")
    var listen: String = "127.0.0.1:8080"

    @Option(help: "The SQLite database. Default: /var/lib/sriovd/sriovd.db, or DIR/sriovd.db with --simulate DIR.")
    var db: String?

    @Option(help: "Seconds a single hardware write may take before the request is answered 504.")
    var writeTimeout: Double = 10

    @Option(help: "Seconds between full rescans of sysfs (uevents and writes refresh sooner).")
    var rescanInterval: Double = 30

    @Flag(help: "Do not put VFs and their settings back after a host reboot; only report what differs.")
    var noRestore = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sriovd")
        let (bindHost, port) = try parseListen(listen)

        let hardware = try host.makeHost()
        let dbPath = db ?? host.simulate.map { $0 + "/sriovd.db" } ?? "/var/lib/sriovd/sriovd.db"
        let store: Store
        do {
            store = try Store(path: dbPath)
        } catch {
            FileHandle.standardError.write(Data("sriovd: refusing to start: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let inventory = InventoryCache(scanner: HostScanner(sysfs: hardware.sysfs))
        let core = ServiceCore(
            store: store, inventory: inventory, host: hardware,
            writeTimeout: .milliseconds(Int(writeTimeout * 1000)), logger: logger)
        let readiness = Readiness()
        let api = SRIOVAPI(core: core, readiness: readiness)

        var configuration = HTTPServerConfiguration()
        configuration.host = bindHost
        configuration.port = port
        let server = HTTPServer(configuration: configuration, handler: api.makeRouter(), logger: logger)
        let address = try server.start()
        FileHandle.standardOutput.write(Data("sriovd listening on http://\(address)\n".utf8))

        try await StartupRecovery(core: core, restore: !noRestore).run()
        readiness.markReady()
        logger.info("ready", metadata: ["pfs": "\(inventory.snapshot.host.pfs.count)", "db": "\(dbPath)"])

        let rescan = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int(rescanInterval * 1000)))
                inventory.rescanAll()
            }
        }
        await waitForTerminationSignal()
        logger.info("stopping: draining in-flight requests")
        rescan.cancel()
        await server.shutdown()
        store.close()
        logger.info("stopped")
    }

    private func parseListen(_ text: String) throws -> (String, UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8080")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Suspends until SIGTERM or SIGINT arrives.
func waitForTerminationSignal() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let resumed = SignalLatch(continuation)
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { resumed.fire() }
            source.resume()
            SignalLatch.keep(source)
        }
    }
}

private final class SignalLatch: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

    static func keep(_ source: any DispatchSourceSignal) { sources.append(source) }

    func fire() {
        lock.lock()
        let pending = continuation
        continuation = nil
        lock.unlock()
        pending?.resume()
    }
}
