import Foundation
import HTTPServer
import HostSimulator
import Logging
import SRIOVCore
import SRIOVHardware
import SRIOVService
import SRIOVStore

/// The whole daemon in-process: a simulated host in a temporary folder, a real SQLite file, and the real
/// HTTP server on 127.0.0.1:0.
final class TestDaemon {
    let directory: URL
    let store: Store
    let core: ServiceCore
    let server: HTTPServer
    let port: UInt16
    /// The Docker plugin socket's path, when the daemon serves one.
    let dockerPluginSocket: String?

    init(
        directory: URL? = nil, profiles: [SimulatedPFProfile] = SimulatedHost.defaultProfiles,
        writeTimeout: Duration = .seconds(5), storeOptions: Store.Options = Store.Options(), vfMetricsLimit: Int? = nil,
        hardware makeHardware: (URL) -> HardwareHost = { HardwareHost.simulated(at: $0) },
        dockerPlugin: Bool = false, dockerPluginPath: String? = nil
    ) async throws {
        let directory =
            directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-test-\(UUID().uuidString)")
        self.directory = directory
        try SimulatedHost.ensure(at: directory, profiles: profiles)
        let hardware = makeHardware(directory)
        store = try Store(path: directory.appendingPathComponent("sriovd.db").path, options: storeOptions)
        let logger = Logger(label: "test")
        core = ServiceCore(
            store: store, inventory: InventoryCache(scanner: HostScanner(sysfs: hardware.sysfs)),
            host: hardware, writeTimeout: writeTimeout, logger: logger)
        let readiness = Readiness(store: store)
        var api = SRIOVAPI(core: core, readiness: readiness)
        api.vfMetricsLimit = vfMetricsLimit
        try await StartupRecovery(core: core).run()
        await api.settleInterruptedOperations()
        readiness.markReady()
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        let plugin = dockerPluginPath ?? directory.appendingPathComponent("docker-plugin.sock").path
        dockerPluginSocket = dockerPlugin || dockerPluginPath != nil ? plugin : nil
        let extra =
            dockerPluginSocket != nil
            ? [
                HTTPServer.ExtraSocket(
                    socket: .init(path: plugin), handler: api.makeDockerPluginHandler(unixRoles: UnixRoleMap()))
            ] : []
        server = HTTPServer(
            configuration: configuration, handler: api.makeRouter(), logger: logger, extraSockets: extra)
        port = try server.start().port
    }

    func client() throws -> TestClient { try TestClient(port: port) }

    func stop() async {
        await server.shutdown()
        store.close()
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Polls `condition` every `interval` until it holds; throws, naming `what`, when `timeout` passes first.
func waitUntil(
    timeout: Duration = .seconds(10), interval: Duration = .milliseconds(20), _ what: String,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: what, timeout: timeout) }
        try await Task.sleep(for: interval)
    }
}

struct WaitTimedOut: Error, CustomStringConvertible {
    var what: String
    var timeout: Duration
    var description: String { "waited \(timeout) in vain until \(what)" }
}
