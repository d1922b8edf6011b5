import Foundation
import SRIOVCore
import Testing

@testable import SRIOVStore

@Suite struct MigrationTests {
    static let initial = EmbeddedMigrations.all[0]
    static let later = Migration(id: "9999_test_later", sql: "CREATE TABLE test_later (x INTEGER NOT NULL) STRICT;\n")
    static let extra = Migration(id: "0002_test_extra", sql: "CREATE TABLE test_extra (x INTEGER NOT NULL) STRICT;\n")

    private func appliedMigrations(_ path: String) throws -> [[String]] {
        try withRawDatabase(path) { database in
            try database.query("SELECT id, sha256 FROM sriovd_migrations ORDER BY id") { [$0.text(0), $0.text(1)] }
        }
    }

    @Test func freshDatabaseGetsEveryMigrationAndOurApplicationID() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        store.close()
        let applied = try appliedMigrations(path)
        #expect(applied.map { $0[0] } == EmbeddedMigrations.all.map(\.id))
        #expect(applied.map { $0[1] } == EmbeddedMigrations.all.map(\.checksum))
        try withRawDatabase(path) { database in
            #expect(try database.pragma("application_id") == String(Migrator.applicationID))
            #expect(try database.pragma("journal_mode") == "wal")
            let tables = try database.query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name") {
                $0.text(0)
            }
            for table in [
                "allocations", "audit_events", "audit_retention_window", "docker_endpoints", "docker_networks",
                "idempotency_keys", "intents", "pfs", "vf_generations", "vf_original_state", "vfs",
            ] {
                #expect(tables.contains(table))
            }
        }
        // Opening again applies nothing and refuses nothing.
        try Store(path: path).close()
        #expect(try appliedMigrations(path).count == EmbeddedMigrations.all.count)
    }

    /// 0006 (Docker networks) on a database of 0001-0005: its allocations stay, and an endpoint must name an
    /// allocation and a network that exist.
    @Test func dockerTablesArriveOnAnOlderDatabase() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("sriovd.db")
        let before = EmbeddedMigrations.all.filter { $0.id < "0006" }
        let old = try Store(path: path, migrations: before)
        let allocation = try await old.allocate(vfIndex: 1)
        old.close()
        let store = try Store(path: path)
        defer { store.close() }
        #expect(try store.read { try $0.allocation(id: allocation.id) } == allocation)
        let network = DockerNetwork(
            networkID: "n1", options: ["pf": "0000:3b:00.0", "vlan": "100"], gateway: "10.0.0.1",
            createdAt: "2026-12-06T00:00:00Z")
        let endpoint = DockerEndpoint(
            networkID: "n1", endpointID: "e1", allocationID: allocation.id, mac: "02:00:00:00:00:01", sandbox: nil,
            createdAt: "2026-12-06T00:00:01Z")
        try await store.write { tx in
            try tx.insertDockerNetwork(network)
            try tx.insertDockerEndpoint(endpoint)
            try tx.setDockerEndpointSandbox(network: "n1", endpoint: "e1", sandbox: "/var/run/docker/netns/x")
        }
        #expect(try store.read { try $0.dockerNetworks() } == [network])
        var joined = endpoint
        joined.sandbox = "/var/run/docker/netns/x"
        #expect(try store.read { try $0.dockerEndpoints() } == [joined])
        let orphan = DockerEndpoint(
            networkID: "n1", endpointID: "e2", allocationID: "no-such-allocation", mac: "02:00:00:00:00:02",
            sandbox: nil, createdAt: "2026-12-06T00:00:02Z")
        await #expect(throws: (any Error).self) { try await store.write { tx in try tx.insertDockerEndpoint(orphan) } }
    }

    @Test func emptyExistingFileIsANewDatabase() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("empty.db")
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        try Store(path: path).close()
        #expect(try appliedMigrations(path).count == EmbeddedMigrations.all.count)
    }

    @Test func upgradeAppliesOnlyTheNewMigrationAndKeepsData() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("sriovd.db")
        // This binary's code reads and writes every column its migrations add, so the old database has them all.
        let later = Self.later
        let old = try Store(path: path, migrations: EmbeddedMigrations.all)
        let allocation = try await old.allocate(vfIndex: 3)
        old.close()
        #expect(try appliedMigrations(path).map { $0[0] } == EmbeddedMigrations.all.map(\.id))

        let new = try Store(path: path, migrations: EmbeddedMigrations.all + [later])
        #expect(try new.read { try $0.allocation(id: allocation.id) } == allocation)
        new.close()
        #expect(try appliedMigrations(path).map { $0[0] } == EmbeddedMigrations.all.map(\.id) + [later.id])
        let count = try withRawDatabase(path) { database in
            try database.queryFirst("SELECT count(*) FROM test_later") { $0.int(0) }
        }
        #expect(count == 0)
    }

    /// Migration numbers need not be contiguous: a database that has 0005 without 0004 (two branches shipped them
    /// in that order) takes 0004 when a binary that has both opens it, and keeps its data; 0005's columns read as
    /// null before a value is written.
    @Test func aMigrationNumberedBelowOneAlreadyAppliedIsAppliedLater() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("sriovd.db")
        let upTo3 = EmbeddedMigrations.all.filter { $0.id < "0004" }
        let v5 = try #require(EmbeddedMigrations.all.first { $0.id.hasPrefix("0005_") })
        let row =
            "INSERT INTO allocations (id, vf, pf, vf_index, owner, labels, state, created_at, generation) VALUES "
            + "('old', '0000:3b:02.0', '0000:3b:00.0', 0, 'vm-1', '{}', 'active', '2026-01-01T00:00:00.000Z', 1)"
        try Store(path: path, migrations: upTo3).close()
        try withRawDatabase(path) { database in try database.execute(row) }
        try Store(path: path, migrations: upTo3 + [v5]).close()
        let fourth = try #require(EmbeddedMigrations.all.first { $0.id.hasPrefix("0004_") })
        let merged = try Store(path: path, migrations: upTo3 + [fourth, v5])
        let old = try #require(try merged.read { try $0.allocation(id: "old") })
        #expect(old.owner == "vm-1" && old.leaseSeconds == nil && old.expiresAt == nil && old.placement == nil)
        merged.close()
        #expect(try appliedMigrations(path).map { $0[0] }.sorted() == (upTo3 + [fourth, v5]).map(\.id))
    }

    @Test func refusesADatabaseFromANewerBinaryAndTouchesNothing() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("sriovd.db")
        try Store(path: path, migrations: [Self.initial, Self.extra]).close()
        let before = try directory.snapshot()
        #expect(throws: StoreError.newerDatabase(unknown: [Self.extra.id])) {
            try Store(path: path, migrations: [Self.initial])
        }
        #expect(try directory.snapshot() == before)
    }

    @Test func refusesAChangedMigrationAndTouchesNothing() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("sriovd.db")
        try Store(path: path, migrations: [Self.initial]).close()
        let before = try directory.snapshot()
        let edited = Migration(id: Self.initial.id, sql: Self.initial.sql + "-- an edit after shipping\n")
        #expect(throws: StoreError.migrationChanged(Self.initial.id)) {
            try Store(path: path, migrations: [edited])
        }
        #expect(try directory.snapshot() == before)
    }

    @Test func refusesAFileThatIsNotSQLiteAndTouchesNothing() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("random.db")
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let before = try directory.snapshot()
        let error = #expect(throws: StoreError.self) { try Store(path: path) }
        guard case .notASriovdDatabase = error else {
            Issue.record("expected notASriovdDatabase, got \(String(describing: error))")
            return
        }
        #expect(try directory.snapshot() == before)
    }

    @Test func refusesAForeignSQLiteDatabaseAndTouchesNothing() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("foreign.db")
        try withRawDatabase(path) { database in
            try database.executeScript("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello');")
        }
        let before = try directory.snapshot()
        let error = #expect(throws: StoreError.self) { try Store(path: path) }
        guard case .notASriovdDatabase(let why) = error else {
            Issue.record("expected notASriovdDatabase, got \(String(describing: error))")
            return
        }
        #expect(why.contains("no sriovd_migrations table"))
        #expect(try directory.snapshot() == before)
    }

    @Test func refusesAnotherApplicationsIDAndTouchesNothing() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("other.db")
        try withRawDatabase(path) { database in
            try database.executeScript("PRAGMA application_id = 1234; CREATE TABLE sriovd_migrations (id TEXT);")
        }
        let before = try directory.snapshot()
        let error = #expect(throws: StoreError.self) { try Store(path: path) }
        guard case .notASriovdDatabase(let why) = error else {
            Issue.record("expected notASriovdDatabase, got \(String(describing: error))")
            return
        }
        #expect(why.contains("application_id"))
        #expect(try directory.snapshot() == before)
    }

    /// 0008 replaces the audit's DELETE trigger: a database with events from before keeps them, still append-only
    /// for every path but the retention window.
    @Test func auditRetentionMigrationKeepsEventsAndTheirProtection() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("sriovd.db")
        let before = EmbeddedMigrations.all.filter { $0.id < "0008" }
        let old = try Store(path: path, migrations: before)
        let id = try await old.write { try $0.appendAudit(Fixtures.event(at: "2020-01-01T00:00:00.000Z")) }
        old.close()
        let new = try Store(path: path)
        #expect(try new.read { try $0.auditEvents(AuditFilter()) }.map(\.id) == [id])
        new.close()
        #expect(try appliedMigrations(path).map { $0[0] } == EmbeddedMigrations.all.map(\.id))
        try withRawDatabase(path) { database in
            #expect(throws: StoreError.self) { try database.execute("DELETE FROM audit_events") }
            let count = try database.queryFirst("SELECT count(*) FROM audit_events") { $0.int(0) }
            #expect(count == 1)
        }
    }

    @Test func refusalsSayWhy() {
        #expect(StoreError.newerDatabase(unknown: ["0009_x"]).description.contains("0009_x"))
        #expect(StoreError.migrationChanged("0001_initial").description.contains("0001_initial"))
        #expect(StoreError.notASriovdDatabase("it is not an SQLite database").description.contains("not an SQLite"))
    }

    /// The binary's copy of the migrations is the migrations folder, byte for byte.
    @Test func embeddedMigrationsEqualTheFolder() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let folder = repository.appendingPathComponent("migrations")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }
            .sorted()
        #expect(!names.isEmpty)
        #expect(names.map { String($0.dropLast(4)) } == EmbeddedMigrations.all.map(\.id))
        for (name, migration) in zip(names, EmbeddedMigrations.all) {
            let bytes = try Data(contentsOf: folder.appendingPathComponent(name))
            #expect(bytes == Data(migration.sql.utf8), "\(name) differs from its embedded copy")
        }
    }

    /// 0007: an allocation may move to another VF only with its generation grown past every allocation of that VF;
    /// its id, seq and creation time still never change; cordons and managed ranges are stored and checked.
    @Test func moveAndMaintenanceRulesOf0007() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        let earlier = try await store.allocate(vfIndex: 0, pf: Fixtures.otherPF)
        try await store.write { tx in
            try tx.updateAllocation(id: earlier.id, state: .released, releasedAt: "2026-12-06T00:00:00.000Z")
        }
        let allocation = try await store.allocate(vfIndex: 1)
        let target = Fixtures.vf(0, of: Fixtures.otherPF)
        await #expect(throws: StoreError.self) {
            try await store.write { tx in
                try tx.connection().execute(
                    "UPDATE allocations SET vf = ?, generation = generation WHERE id = ?", target.description,
                    allocation.id)
            }
        }
        let generation = try await store.write { tx in
            try tx.moveAllocation(id: allocation.id, to: target, pf: Fixtures.otherPF, vfIndex: 0, above: 1)
        }
        #expect(generation > earlier.generation && generation > allocation.generation)
        let moved = try #require(try store.read { try $0.allocation(id: allocation.id) })
        #expect(moved.vf == target && moved.pf == Fixtures.otherPF && moved.id == allocation.id)
        await #expect(throws: StoreError.self) {
            try await store.write { tx in
                try tx.connection().execute("UPDATE allocations SET created_at = 'x' WHERE id = ?", allocation.id)
            }
        }
        try await store.write { tx in
            try tx.setCordon(pf: Fixtures.pf, cordoned: true)
            try tx.setManagedRange(pf: Fixtures.pf, range: 0...3)
        }
        let map = try store.read { try $0.maintenance() }
        #expect(map.isCordoned(Fixtures.pf) && map[Fixtures.pf].managed == 0...3 && map[Fixtures.pf].cordonedAt != nil)
        #expect(map.isExternal(pf: Fixtures.pf, vfIndex: 4) && !map.isExternal(pf: Fixtures.otherPF, vfIndex: 9))
        await #expect(throws: StoreError.self) {
            try await store.write { tx in
                try tx.connection().execute(
                    "UPDATE pf_maintenance SET managed_first = 5, managed_last = 2 WHERE pf = ?",
                    Fixtures.pf.description)
            }
        }
    }
}
