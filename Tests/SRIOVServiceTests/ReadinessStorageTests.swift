import Foundation
import HTTPServer
import HostSimulator
import Logging
import SRIOVCore
import SRIOVHardware
import SRIOVService
import Testing

@testable import SRIOVStore

/// `GET /readyz` while the store cannot commit: a second SQLite connection on the same file holds the write
/// lock (`BEGIN EXCLUSIVE`), as another process would; the daemon's writer gives up after 50 ms.
@Suite struct ReadinessStorageTests {
    /// The daemon in-process as `sriovd serve` wires it: `/readyz` from a `Readiness` that asks the store.
    final class Daemon {
        let directory: URL
        let store: Store
        let server: HTTPServer
        let port: UInt16

        init(probeInterval: Duration) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-ready-\(UUID())")
            try SimulatedHost.ensure(at: directory, profiles: SimulatedHost.defaultProfiles)
            let hardware = HardwareHost.simulated(at: directory)
            store = try Store(
                path: directory.appendingPathComponent("sriovd.db").path,
                options: Store.Options(busyTimeout: .milliseconds(50)))
            let logger = Logger(label: "test")
            let core = ServiceCore(
                store: store, inventory: InventoryCache(scanner: HostScanner(sysfs: hardware.sysfs)),
                host: hardware, writeTimeout: .seconds(5), logger: logger)
            let readiness = Readiness(store: store, probeInterval: probeInterval)
            try await StartupRecovery(core: core).run()
            readiness.markReady()
            let router = SRIOVAPI(core: core, readiness: readiness).makeRouter()
            var configuration = HTTPServerConfiguration()
            configuration.port = 0
            server = HTTPServer(configuration: configuration, handler: router, logger: logger)
            port = try server.start().port
        }

        func readyz() async throws -> TestClient.Response { try await TestClient(port: port).get("/readyz") }

        /// A second connection to the database file holding its write lock.
        func holdWriteLock() throws -> Database {
            let holder = try Database(path: store.path, flags: openReadWrite, busyTimeoutMilliseconds: 0)
            try holder.execute("BEGIN EXCLUSIVE")
            return holder
        }

        /// The time the last probe wrote, if any probe has committed.
        func probedAt() throws -> String? {
            try store.read { view in
                try view.connection().queryFirst("SELECT probed_at FROM store_probe") { $0.text(0) }
            }
        }

        func stop() async {
            await server.shutdown()
            store.close()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// `SQLITE_OPEN_READWRITE`.
    static let openReadWrite: Int32 = 0x0000_0002

    private func expectStorageUnavailable(_ response: TestClient.Response) throws {
        #expect(response.status == 503)
        #expect(response.header("Content-Type") == "application/problem+json")
        let problem = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(problem["type"] as? String == "urn:sriovd:problem:storage-unavailable")
        #expect(problem["status"] as? Int == 503)
        #expect((problem["storage_error"] as? String)?.contains("database is locked") == true)
        #expect((problem["detail"] as? String)?.contains("database is locked") == true)
        #expect(problem["failing_since"] is String)
    }

    @Test func readyzIs503NamingTheStorageErrorWhileALockIsHeldAnd200AfterItIsReleased() async throws {
        let daemon = try await Daemon(probeInterval: .zero)
        #expect(try await daemon.readyz().status == 200)
        #expect(try daemon.probedAt() == nil, "a healthy store is not probed: polling /readyz writes nothing")

        let holder = try daemon.holdWriteLock()
        // A client's write meets the lock and fails; the store notes it.
        await #expect(throws: StoreError.self) { try await daemon.store.purgeExpiredIdempotencyRecords() }
        try expectStorageUnavailable(try await daemon.readyz())
        // Each poll probes (interval zero) and fails again while the lock is held.
        try expectStorageUnavailable(try await daemon.readyz())
        #expect(try daemon.probedAt() == nil)

        try holder.execute("COMMIT")
        holder.close()
        let ready = try await daemon.readyz()
        #expect(ready.status == 200)
        #expect(ready.text == #"{"status":"ready"}"#)
        #expect(try daemon.probedAt() != nil, "the probe that turned /readyz back to 200 committed")
        await daemon.stop()
    }

    @Test func probesAreRateLimitedSoPollingDoesNotHammerTheDatabase() async throws {
        let daemon = try await Daemon(probeInterval: .seconds(3600))
        let holder = try daemon.holdWriteLock()
        await #expect(throws: StoreError.self) { try await daemon.store.purgeExpiredIdempotencyRecords() }
        try expectStorageUnavailable(try await daemon.readyz())  // probes once, and fails
        try holder.execute("COMMIT")
        holder.close()
        // The next probe is not due yet: /readyz answers what the store last found, and writes nothing.
        try expectStorageUnavailable(try await daemon.readyz())
        #expect(try daemon.probedAt() == nil)
        // Any write that commits makes the store healthy again.
        try await daemon.store.purgeExpiredIdempotencyRecords()
        #expect(try await daemon.readyz().status == 200)
        await daemon.stop()
    }
}
