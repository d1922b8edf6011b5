import ArgumentParser
import Dispatch
import FoundationEssentials
import Glibc
import HTTPServer
import Logging
import Netlink
import SRIOVCore
import SRIOVHardware
import SRIOVService
import SRIOVStore
import Threading

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon and serve the API.",
        discussion: """
            TCP on an address other than loopback needs --tokens (or --tls-client-ca) and TLS (--tls-cert, \
            --tls-key), or --insecure-http. Without --tokens, every TCP caller on loopback is admin (local \
            development). Unix-socket peers get the role --unix-role maps their uid or group to; root is admin. \
            SIGHUP re-reads the tokens file and the TLS certificate and key; SIGTERM and SIGINT drain and stop.
            """)

    @OptionGroup var host: HostOptions
    @OptionGroup var tls: TLSOptions

    @OptionGroup var audit: AuditOptions

    @Option(
        help: "TCP address to listen on, HOST:PORT, or \"none\" for the Unix socket only. Port 0 picks a free port.")
    var listen: String = "127.0.0.1:8080"

    @Option(help: "The SQLite database. Default: /var/lib/sriovd/sriovd.db, or DIR/sriovd.db with --simulate DIR.")
    var db: String?

    @Option(help: "Seconds a single hardware write may take before the request is answered 504.")
    var writeTimeout: Double = 10

    @Option(help: "Seconds between full rescans of sysfs (uevents and writes refresh sooner).")
    var rescanInterval: Double = 30

    @Flag(help: "Do not put VFs and their settings back after a host reboot; only report what differs.")
    var noRestore = false

    @Flag(
        name: .customLong("init"),
        help: """
            Create a new, empty database where the file is missing or empty although files of an earlier \
            database (its -wal, -shm or -journal) are beside it; they are renamed aside. Without it sriovd refuses \
            to start then. A database with content is never touched.
            """)
    var initDatabase = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Flag(help: "Do not log a line per request (metrics still count them).")
    var noAccessLog = false

    @Option(help: "The tokens file: lines of NAME ROLE SHA256 (see `sriovd token create`). Re-read on SIGHUP.")
    var tokens: String?

    @Option(help: "Also listen on this Unix socket path (for CNI plugins, kubelet plugins, VM managers).")
    var unix: String?

    @Option(
        help: """
            Also serve Docker's remote network driver protocol on this Unix socket (its own routes): Docker finds \
            /run/docker/plugins/sriovd.sock as the driver "sriovd". Peers need operator or admin by --unix-role \
            (root is admin); the socket gets --unix-mode and --unix-group.
            """)
    var dockerPlugin: String?

    @Option(help: "The Unix socket's permission bits, in octal.")
    var unixMode: String = "0660"

    @Option(help: "The Unix socket's group (a name or a gid); default: the daemon's group.")
    var unixGroup: String?

    @Option(
        help: """
            Roles of Unix-socket peers: uid:0=admin,gid:kvm=operator,user:NAME=...,group:NAME=... (repeatable; \
            @FILE reads rules from a file). A uid rule decides alone, then the best group rule; root is admin.
            """)
    var unixRole: [String] = []

    @Option(help: "Seconds SIGTERM waits for in-flight requests before closing connections.")
    var shutdownGrace: Double = 10

    @Option(help: "HTTP event loop threads (connections are spread across them).")
    var eventLoops: Int = 1

    @Option(
        help: """
            Microseconds an event loop keeps polling after a request before it sleeps: the next request is \
            answered sooner, at the cost of CPU while clients are active. 0 turns it off.
            """)
    var busyPollUs: Int = 100

    @Option(help: "Seconds between health sweeps: VF links and traffic read over rtnetlink, health changes recorded.")
    var healthInterval: Double = 10

    @Flag(
        help: """
            Serve per-VF traffic counters on /metrics (sriovd_vf_*_total, labelled pf and vf). Off by default: \
            series grow with the VF count.
            """)
    var vfMetrics = false

    @Option(help: "With --vf-metrics: the most VFs given series (held VFs first, then by address).")
    var vfMetricsLimit: Int = 256

    @Option(help: "HTTP connections open at once, TCP and Unix together; beyond it a new one gets 503.")
    var maxConnections: Int = 4096

    @Option(
        help: """
            Connections kept for Unix-socket peers and callers with a bearer token: anonymous TCP clients may \
            hold --max-connections minus this many.
            """)
    var reservedConnections: Int = 256

    @Option(
        help: """
            Connections one client may hold (an IP address over TCP until it presents a token; a uid over the \
            Unix socket); beyond it 429.
            """)
    var clientConnections: Int = 512

    @Option(help: "Requests one client may have in progress (head received, response not yet sent); beyond it 429.")
    var clientRequests: Int = 256

    @Option(help: "MiB of request bodies one client may have in progress; beyond it 429.")
    var clientBodyMib: Int = 16

    @Option(help: "MiB of request bodies in progress across all connections; beyond it 503 with Retry-After.")
    var bodyMemoryMib: Int = 64

    @Option(help: "Seconds to receive a request's headers, from their first byte; then 408.")
    var headerTimeout: Double = 10

    @Option(
        help: """
            KiB per second a request body must arrive at, on average, after a grace of --header-timeout from its \
            headers; then 408.
            """)
    var minBodyRateKib: Int = 16

    @Option(help: "Seconds between sweeps that release allocations whose lease ran out.")
    var leaseCheckInterval: Double = 1

    func validate() throws {
        guard (1...64).contains(eventLoops) else { throw ValidationError("--event-loops must be 1 to 64.") }
        guard (0...10_000).contains(busyPollUs) else { throw ValidationError("--busy-poll-us must be 0 to 10000.") }
        guard healthInterval >= 0.1 else { throw ValidationError("--health-interval must be at least 0.1 s.") }
        guard (1...65_536).contains(vfMetricsLimit) else {
            throw ValidationError("--vf-metrics-limit must be 1 to 65536.")
        }
        guard (1...1_000_000).contains(maxConnections) else {
            throw ValidationError("--max-connections must be 1 to 1000000.")
        }
        guard (0...maxConnections).contains(reservedConnections) else {
            throw ValidationError("--reserved-connections must be 0 to --max-connections.")
        }
        for (name, value) in [
            ("--client-connections", clientConnections), ("--client-requests", clientRequests),
            ("--client-body-mib", clientBodyMib), ("--body-memory-mib", bodyMemoryMib),
            ("--min-body-rate-kib", minBodyRateKib),
        ] where value < 1 {
            throw ValidationError("\(name) must be at least 1.")
        }
        guard headerTimeout > 0 else { throw ValidationError("--header-timeout must be more than 0.") }
        guard leaseCheckInterval >= 0.01 else { throw ValidationError("--lease-check-interval must be at least 0.01.") }
    }

    /// The connection and client limits of the flags.
    private func applyLimits(to configuration: inout HTTPServerConfiguration) {
        configuration.maxConnections = maxConnections
        configuration.headerTimeout = .milliseconds(Int(headerTimeout * 1000))
        configuration.clientLimits.reservedConnections = reservedConnections
        configuration.clientLimits.peerConnections = clientConnections
        configuration.clientLimits.peerRequests = clientRequests
        configuration.clientLimits.peerBufferedBytes = clientBodyMib * 1024 * 1024
        configuration.clientLimits.bodyMemory = bodyMemoryMib * 1024 * 1024
        configuration.clientLimits.minBodyRate = minBodyRateKib * 1024
    }

    func run() async throws {
        let logger = bootstrapLogging()
        let (configuration, security) = try makeServerConfiguration()
        // Signals: handled from here on, so that one arriving during startup recovery is not fatal.
        let signals = SignalHandlers()
        var phases = StartupPhases()

        let hardware = try host.makeHost()
        let dbPath = db ?? host.simulate.map { $0 + "/sriovd.db" } ?? "/var/lib/sriovd/sriovd.db"
        // The sysfs walk and the database's checks and migrations need nothing of each other: side by side.
        let sysfs = hardware.sysfs
        async let scanned = InventoryCache(scanner: HostScanner(sysfs: sysfs))
        let store = try openStore(at: dbPath, logger: logger)
        phases.lap("open")
        let inventory = await scanned
        phases.lap("scan")
        let core = ServiceCore(
            store: store, inventory: inventory, host: hardware,
            writeTimeout: .milliseconds(Int(writeTimeout * 1000)), logger: logger)
        let readiness = Readiness(store: store)
        var api = SRIOVAPI(core: core, readiness: readiness)
        api.vfMetricsLimit = vfMetrics ? vfMetricsLimit : nil
        let accessLog = try refusingToStart { try makeAccessLog() }
        let server = HTTPServer(
            configuration: configuration, handler: makeHandler(api: api, security: security), logger: logger,
            accessLog: AccessLog.makeHook(writer: accessLog), extraSockets: dockerPluginSocket(api: api, security))
        Metrics.shared.attachServerStatistics { server.statistics }
        let address = try startServer(server, store: store)
        announce(address, configuration: configuration, security: security, logger: logger)
        signals.onReload { [tls = configuration.tls] in
            Self.reloadTokens(security.tokens, logger: logger)
            TLSOptions.reload(tls, logger: logger)
        }
        phases.lap("listen")

        try await StartupRecovery(core: core, restore: !noRestore).run()
        phases.lap("reconcile")
        await api.settleInterruptedOperations()
        phases.lap("settle")
        readiness.markReady()
        SystemdNotify.send("READY=1\nSTATUS=serving")
        logger.info(
            "ready",
            metadata: phases.metadata.merging(["pfs": "\(inventory.snapshot.host.pfs.count)", "db": "\(dbPath)"]) { $1 }
        )

        let background = startServingWork(core: core, store: store, databasePath: dbPath, logger: logger)
        await signals.termination()
        SystemdNotify.send("STOPPING=1")
        logger.info("stopping: draining in-flight requests")
        background.stop()
        await server.shutdown()
        accessLog?.close()
        store.close()
        logger.info("stopped")
    }

    /// The HTTP server's settings from the options: listeners, TLS and tokens, timeouts, loops and client limits.
    private func makeServerConfiguration() throws -> (HTTPServerConfiguration, SecuritySettings) {
        var configuration = HTTPServerConfiguration()
        let security = try refusingToStart { try makeSecurity(into: &configuration) }
        configuration.shutdownGrace = .milliseconds(Int(shutdownGrace * 1000))
        configuration.eventLoopCount = eventLoops
        configuration.busyPoll = .microseconds(busyPollUs)
        applyLimits(to: &configuration)
        return (configuration, security)
    }

    /// What runs while the daemon serves: the periodic work, the health monitor, lease expiry and audit retention.
    private func startServingWork(core: ServiceCore, store: Store, databasePath: String, logger: Logger)
        -> BackgroundWork
    {
        var background = startBackgroundWork(inventory: core.inventory, store: store, logger: logger)
        background.tasks.append(core.startHealthMonitor(interval: .milliseconds(Int(healthInterval * 1000))))
        background.tasks.append(startLeaseExpiry(core: core))
        if let retention = audit.start(store: store, databasePath: databasePath, logger: logger) {
            background.tasks.append(retention)
        }
        return background
    }

    /// How often expired idempotency records are deleted (they are kept at least 24 hours).
    static let idempotencyPurgeInterval: Duration = .seconds(3600)

    private func bootstrapLogging() -> Logger {
        let level = logLevel
        LoggingSystem.bootstrap { label in LogfmtLogHandler(label: label, level: level) }
        return Logger(label: "sriovd")
    }

    /// The access log, written in batches off the event loop; nil with --no-access-log or a level above info.
    private func makeAccessLog() throws -> AccessLogWriter? {
        guard !noAccessLog, logLevel <= .info else { return nil }
        do {
            return try AccessLogWriter.start()
        } catch {
            throw Refusal(reason: "the access log cannot start: \(error)")
        }
    }

    /// Runs `body`; a `Refusal` it throws is printed and becomes exit status 2 (other errors pass through).
    private func refusingToStart<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let refusal as Refusal {
            Console.error("sriovd: refusing to start: \(refusal.reason)")
            throw ExitCode(2)
        }
    }

    /// Opens the database, or prints why it is refused (damaged, written by a newer sriovd, …) and exits 2.
    private func openStore(at path: String, logger: Logger) throws -> Store {
        let store = try refusingToStart {
            do {
                return try Store(path: path, options: Store.Options(initialize: initDatabase))
            } catch {
                throw Refusal(reason: "\(error)")
            }
        }
        for file in store.setAside {
            logger.warning("--init: moved aside a file left by an earlier database", metadata: ["file": "\(file)"])
        }
        return store
    }

    /// The API's router behind access control.
    private func makeHandler(api: SRIOVAPI, security: SecuritySettings) -> AccessControl {
        let router = api.makeRouter()
        return AccessControl(
            router: router, tokens: security.tokens, unixRoles: security.unixRoles,
            certificateRoles: security.certificateRoles, anonymousTCPRole: security.anonymousTCPRole)
    }

    /// The Docker plugin socket with its own router, when --docker-plugin is given.
    private func dockerPluginSocket(api: SRIOVAPI, _ security: SecuritySettings) -> [HTTPServer.ExtraSocket] {
        guard let dockerPlugin, let mode = UInt32(unixMode, radix: 8) else { return [] }
        let group = unixGroup.flatMap { UInt32($0) ?? UnixRoleMap.groupID($0) }
        return [
            HTTPServer.ExtraSocket(
                socket: .init(path: dockerPlugin, mode: mode, groupID: group),
                handler: api.makeDockerPluginHandler(unixRoles: security.unixRoles))
        ]
    }

    /// Starts listening, or prints why it cannot (closing the store) and exits 2.
    private func startServer(_ server: HTTPServer, store: Store) throws -> SocketAddress {
        do {
            return try server.start()
        } catch {
            Console.error("sriovd: refusing to start: \(error)")
            store.close()
            throw ExitCode(2)
        }
    }

    /// Prints where the daemon listens and warns when every loopback TCP caller is admin.
    private func announce(
        _ address: SocketAddress, configuration: HTTPServerConfiguration, security: SecuritySettings, logger: Logger
    ) {
        if configuration.listensOnTCP {
            Console.output("sriovd listening on \(configuration.tls == nil ? "http" : "https")://\(address)")
            tls.warnIfInsecure(address: address, isLoopback: Self.isLoopback(configuration.host), logger: logger)
        }
        if let unix {
            Console.output("sriovd listening on unix:\(unix)")
        }
        if let dockerPlugin {
            Console.output("sriovd serving the Docker network driver on unix:\(dockerPlugin)")
        }
        if security.anonymousTCPRole != nil {
            logger.warning(
                "no tokens file: every TCP caller on loopback is admin (local development only)",
                metadata: ["http.address": "\(address)"])
        }
    }

    /// What SIGHUP does: re-reads the tokens file, keeping the previous tokens when it cannot.
    private static func reloadTokens(_ tokens: TokenStore?, logger: Logger) {
        guard let tokens else {
            logger.notice("SIGHUP: no tokens file to re-read")
            return
        }
        do {
            let count = try tokens.reload()
            logger.notice(
                "tokens file re-read", metadata: ["tokens.path": "\(tokens.path ?? "-")", "tokens.count": "\(count)"])
        } catch {
            logger.error("tokens file not re-read; the previous tokens stay in force", metadata: ["error": "\(error)"])
        }
    }

    /// What runs while serving, stopped before the server shuts down.
    struct BackgroundWork {
        var monitors: [NetlinkMonitor]
        var tasks: [Task<Void, Never>]

        func stop() {
            for task in tasks { task.cancel() }
            for monitor in monitors { monitor.stop() }
        }
    }

    /// The uevent monitor, the periodic rescan and the periodic purge of expired idempotency records.
    private func startBackgroundWork(inventory: InventoryCache, store: Store, logger: Logger) -> BackgroundWork {
        // Kernel uevents and link notifications keep the inventory fresh between rescans (the simulated host has
        // neither).
        let monitors =
            host.simulate == nil
            ? [
                startUEventMonitor(inventory: inventory, logger: logger),
                startLinkMonitor(inventory: inventory, logger: logger),
            ]
            .compactMap { $0 } : []
        let interval = rescanInterval
        let rescan = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
                inventory.rescanAll(observed: true)
            }
        }
        let purge = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.idempotencyPurgeInterval)
                if Task.isCancelled { break }
                await Self.purgeIdempotencyRecords(store: store, logger: logger)
            }
        }
        return BackgroundWork(monitors: monitors, tasks: [rescan, purge])
    }

    /// Releases allocations whose lease ran out, every `--lease-check-interval` (startup recovery swept once).
    private func startLeaseExpiry(core: ServiceCore) -> Task<Void, Never> {
        let interval = Duration.milliseconds(Int(leaseCheckInterval * 1000))
        return Task.detached { await LeaseService(core: core).run(every: interval) }
    }

    private static func purgeIdempotencyRecords(store: Store, logger: Logger) async {
        do {
            let removed = try await store.purgeExpiredIdempotencyRecords()
            if removed > 0 {
                logger.info("expired idempotency records removed", metadata: ["idempotency.removed": "\(removed)"])
            }
        } catch {
            logger.warning("expired idempotency records not removed", metadata: ["error": "\(error)"])
        }
    }

    /// Listens for PCI uevents and hands each device to the inventory; nil (logged) if the socket cannot open.
    private func startUEventMonitor(inventory: InventoryCache, logger: Logger) -> UEventMonitor? {
        do {
            return try UEventMonitor(
                onEvent: { event in
                    guard event.subsystem == "pci" else { return }
                    inventory.deviceChanged(event.pciSlotName.flatMap { PCIAddress($0) })
                },
                onOverrun: { inventory.deviceChanged(nil) })
        } catch {
            logger.warning("no kernel uevents; relying on the periodic rescan", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Listens for link changes (`RTNLGRP_LINK`), so a PF's link going down or up shows at once; nil (logged) if
    /// the socket cannot open.
    private func startLinkMonitor(inventory: InventoryCache, logger: Logger) -> NetlinkMonitor? {
        do {
            return try NetlinkMonitor(
                links: { inventory.linkChanged(name: $0.name) }, onOverrun: { inventory.deviceChanged(nil) })
        } catch {
            logger.warning("no link notifications; relying on the periodic rescan", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Why the daemon will not start.
    struct Refusal: Error {
        var reason: String
    }

    /// Tokens, Unix-socket roles and the anonymous role, checked before anything is opened.
    struct SecuritySettings {
        var tokens: TokenStore?
        var unixRoles: UnixRoleMap
        var certificateRoles = CertificateRoleMap()
        var anonymousTCPRole: Role?
    }

    private func makeSecurity(into configuration: inout HTTPServerConfiguration) throws -> SecuritySettings {
        if listen == "none" {
            guard unix != nil || dockerPlugin != nil else {
                throw Refusal(
                    reason: "--listen none needs --unix PATH or --docker-plugin PATH: there would be no listener")
            }
            configuration.listensOnTCP = false
        } else {
            let (bindHost, port) = try parseListen(listen)
            configuration.host = bindHost
            configuration.port = port
            if tokens == nil && !tls.asksForClientCertificates && !Self.isLoopback(bindHost) {
                throw Refusal(
                    reason: """
                        --listen \(listen) is not a loopback address and no --tokens file is given, so anyone who \
                        can reach this port could change SR-IOV on this host. Give --tokens FILE (see `sriovd token \
                        create`) or --tls-client-ca FILE, listen on 127.0.0.1, or use --unix PATH with --listen none.
                        """)
            }
            try tls.checkPlainHTTP(listen: listen, isLoopback: Self.isLoopback(bindHost))
            configuration.tls = try tls.makeCredentials()
        }
        var tokenStore: TokenStore?
        if let tokens {
            do {
                tokenStore = try TokenStore(path: tokens)
            } catch {
                throw Refusal(reason: "the tokens file \(error)")
            }
        }
        var unixRoles = UnixRoleMap()
        if unix != nil || dockerPlugin != nil {
            guard let mode = UInt32(unixMode, radix: 8), mode <= 0o777 else {
                throw Refusal(reason: "--unix-mode \(unixMode) must be octal permission bits such as 0660")
            }
            var groupID: UInt32?
            if let unixGroup {
                guard let gid = UInt32(unixGroup) ?? UnixRoleMap.groupID(unixGroup) else {
                    throw Refusal(reason: "--unix-group \(unixGroup): no such group on this host")
                }
                groupID = gid
            }
            if let unix { configuration.unixSocket = .init(path: unix, mode: mode, groupID: groupID) }
            var rules: [String] = []
            for spec in unixRole {
                if spec.hasPrefix("@") {
                    guard let text = try? String(contentsOfFile: String(spec.dropFirst()), encoding: .utf8) else {
                        throw Refusal(reason: "--unix-role \(spec): the file cannot be read")
                    }
                    rules.append(text)
                } else {
                    rules.append(spec)
                }
            }
            do {
                unixRoles = try UnixRoleMap(parsing: rules.joined(separator: ","))
            } catch {
                throw Refusal(reason: "--unix-role: \(error)")
            }
        }
        let anonymous: Role? =
            tokens == nil && !tls.asksForClientCertificates && configuration.listensOnTCP ? .admin : nil
        return SecuritySettings(
            tokens: tokenStore, unixRoles: unixRoles, certificateRoles: try tls.makeCertificateRoles(),
            anonymousTCPRole: anonymous)
    }

    /// 127.0.0.0/8, ::1 and "localhost".
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        var address = in_addr()
        if inet_pton(AF_INET, host, &address) == 1 {
            return UInt32(bigEndian: address.s_addr) >> 24 == 127
        }
        return false
    }

    private func parseListen(_ text: String) throws -> (String, UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8080, or none")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// SIGTERM and SIGINT (stop) and SIGHUP (reload), delivered on a dispatch queue instead of killing the process.
final class SignalHandlers: @unchecked Sendable {
    private let lock = ConditionLock()
    private var terminated = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var reload: (@Sendable () -> Void)?
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in
                if signalNumber == SIGHUP { self?.reloadRequested() } else { self?.terminate() }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// What SIGHUP does.
    func onReload(_ body: @escaping @Sendable () -> Void) {
        lock.withLock { reload = body }
    }

    /// Returns once SIGTERM or SIGINT has arrived (at once if one already has).
    func termination() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = lock.withLock { () -> Bool in
                if terminated { return true }
                waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    private func terminate() {
        let pending = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            terminated = true
            defer { waiter = nil }
            return waiter
        }
        pending?.resume()
    }

    private func reloadRequested() {
        lock.withLock { reload }?()
    }
}
