import Foundation
import SRIOVCore
import Testing

@testable import SRIOVStore

/// Opening a damaged database, a missing or empty file with a database's other files beside it, and the
/// writer's notes on whether it can commit, with real files, a second connection's lock and a full tmpfs.
@Suite struct StoreOpenTests {
    let directory = TemporaryDirectory()

    /// A closed database with `count` audit events, all in the main file (the close checkpoints the WAL).
    private func populatedDatabase(_ path: String, count: Int = 3000) async throws {
        let store = try Store(path: path)
        try await store.write { tx in
            for number in 0..<count { _ = try tx.appendAudit(Fixtures.event(target: "event-\(number)")) }
        }
        store.close()
        #expect(access(path + "-wal", F_OK) != 0, "the close checkpointed and removed the WAL")
    }

    @Test func aDatabaseWithADamagedPageIsRefusedByQuickCheckAndLeftAsItIs() async throws {
        let path = directory.file("sriovd.db")
        try await populatedDatabase(path)
        let (pageSize, root) = try withRawDatabase(path) { database in
            (
                try Int(database.pragma("page_size") ?? "") ?? 0,
                try database.queryFirst("SELECT rootpage FROM sqlite_schema WHERE name = 'audit_events'") {
                    $0.int(0)
                } ?? 0
            )
        }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // The root of audit_events is an interior table page (type 5) over its leaves; its right-most child
        // pointer (bytes 8..<12) names a leaf in the middle of the file. Garbage over that whole leaf is an
        // invalid b-tree page that only a walk of the tree meets: opening and the schema are unaffected.
        let rootOffset = (root - 1) * pageSize
        #expect(bytes[rootOffset] == 5)
        let leaf = bytes[rootOffset + 8..<rootOffset + 12].reduce(0) { $0 << 8 | Int($1) }
        #expect(leaf > root && leaf <= bytes.count / pageSize)
        let leafOffset = (leaf - 1) * pageSize
        bytes.replaceSubrange(leafOffset..<leafOffset + pageSize, with: [UInt8](repeating: 0xA5, count: pageSize))
        try bytes.write(to: URL(fileURLWithPath: path))
        let before = try directory.snapshot()

        #expect {
            try Store(path: path)
        } throws: { error in
            guard case .damagedDatabase(let findings) = error as? StoreError else { return false }
            // quick_check's own report, not only SQLite's "database disk image is malformed".
            return findings.contains { $0.contains("btreeInitPage") || $0.hasPrefix("Tree ") }
        }
        #expect(try directory.snapshot() == before, "a refused database is left as it is")
        do {
            _ = try Store(path: path)
        } catch {
            #expect(error.description.contains("PRAGMA quick_check reports"))
            #expect(error.description.contains("Refusing to start"))
        }
    }

    @Test func anIntactDatabasePassesQuickCheck() async throws {
        let path = directory.file("sriovd.db")
        try await populatedDatabase(path, count: 10)
        let store = try Store(path: path)
        store.close()
    }

    @Test func aMissingFileWithNothingBesideItIsANewDatabase() throws {
        let path = directory.file("sriovd.db")
        let store = try Store(path: path)
        store.close()
        #expect(store.setAside.isEmpty)
        let applied = try withRawDatabase(path) { try $0.query("SELECT id FROM sriovd_migrations") { $0.text(0) } }
        #expect(applied == EmbeddedMigrations.all.map(\.id))
    }

    @Test(arguments: ["-wal", "-shm", "-journal"])
    func anEmptyFileWithASidecarBesideItIsRefused(suffix: String) throws {
        let path = directory.file("sriovd.db")
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(FileManager.default.createFile(atPath: path + suffix, contents: Data(repeating: 7, count: 100)))
        let before = try directory.snapshot()
        #expect(
            throws: StoreError.sidecarsWithoutDatabase(
                path: path, file: "empty (0 bytes)", found: ["\(path)\(suffix) (100 bytes)"])
        ) {
            try Store(path: path)
        }
        #expect(try directory.snapshot() == before, "nothing is touched")
        let message = StoreError.sidecarsWithoutDatabase(path: path, file: "empty (0 bytes)", found: ["x"])
            .description
        #expect(message.contains("--init"))
    }

    @Test func aMissingFileWithAWALBesideItIsRefused() throws {
        let path = directory.file("sriovd.db")
        #expect(FileManager.default.createFile(atPath: path + "-wal", contents: Data(repeating: 1, count: 32)))
        #expect(
            throws: StoreError.sidecarsWithoutDatabase(
                path: path, file: "missing", found: ["\(path)-wal (32 bytes)"])
        ) {
            try Store(path: path)
        }
        #expect(access(path, F_OK) != 0, "no database file was created")
    }

    @Test func initCreatesANewDatabaseAndMovesTheSidecarsAside() throws {
        let path = directory.file("sriovd.db")
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let stale = Data(repeating: 9, count: 64)
        #expect(FileManager.default.createFile(atPath: path + "-wal", contents: stale))
        #expect(FileManager.default.createFile(atPath: path + "-shm", contents: stale))
        let store = try Store(path: path, options: Store.Options(initialize: true))
        store.close()
        #expect(store.setAside.count == 2)
        for moved in store.setAside {
            #expect(moved.hasPrefix(path + "-wal.before-init-") || moved.hasPrefix(path + "-shm.before-init-"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: moved)) == stale, "kept, not deleted")
        }
        let applied = try withRawDatabase(path) { try $0.query("SELECT id FROM sriovd_migrations") { $0.text(0) } }
        #expect(applied == EmbeddedMigrations.all.map(\.id))
        // A database with content is opened as it is, with or without --init.
        try Store(path: path, options: Store.Options(initialize: true)).close()
        try Store(path: path).close()
    }
}

@Suite struct StoreHealthTests {
    let directory = TemporaryDirectory()

    /// A store whose writer gives up on a lock after 50 ms, so a failed write takes no longer.
    private func openStore() throws -> Store {
        try Store(path: directory.file("sriovd.db"), options: Store.Options(busyTimeout: .milliseconds(50)))
    }

    @Test func aLockHeldByAnotherConnectionFailsCommitsUntilItIsReleased() async throws {
        let store = try openStore()
        defer { store.close() }
        #expect(store.health == .healthy)
        let holder = try Database(path: store.path, flags: openReadWriteCreate, busyTimeoutMilliseconds: 0)
        defer { holder.close() }
        try holder.execute("BEGIN EXCLUSIVE")

        await #expect(throws: StoreError.self) { try await store.allocate(vfIndex: 0) }
        guard case .failing(.sqlite(let code, let message, _), let since) = store.health else {
            Issue.record("health is \(store.health) after a failed commit")
            return
        }
        #expect(code & 0xff == 5, "SQLITE_BUSY")
        #expect(message.contains("locked"))
        // Probing while the lock is held fails too, and keeps when the failures started.
        guard case .failing(_, since) = await store.probe() else {
            Issue.record("a probe committed while another connection held the lock")
            return
        }

        try holder.execute("COMMIT")
        #expect(await store.probe() == .healthy)
        let probedAt = try store.read { view in
            try view.connection().queryFirst("SELECT probed_at FROM store_probe WHERE id = 1") { $0.text(0) }
        }
        #expect(probedAt != nil, "the probe wrote its row")
        _ = try await store.allocate(vfIndex: 0)
        #expect(store.health == .healthy)
    }

    @Test func aWriteThatFailsOnItsOwnLeavesTheStoreHealthy() async throws {
        let store = try openStore()
        defer { store.close() }
        _ = try await store.allocate(vfIndex: 1)
        await #expect(throws: StoreError.vfAlreadyHeld(Fixtures.vf(1))) { try await store.allocate(vfIndex: 1) }
        await #expect(throws: BodyFailure(number: 1)) { try await store.write { _ in throw BodyFailure(number: 1) } }
        #expect(store.health == .healthy)
    }

    @Test(.enabled(if: Tmpfs.canMount, "needs permission to mount a tmpfs"))
    func aFullFileSystemFailsCommitsUntilThereIsRoomAgain() async throws {
        let mount = try Tmpfs(at: directory.file("small"), size: "8m")
        defer { mount.unmount() }
        let store = try Store(path: mount.path + "/sriovd.db")
        defer { store.close() }
        let filler = mount.path + "/filler"
        mount.fill(filler)

        let details = String(repeating: "x", count: 2000)
        let bigWrite: @Sendable (Transaction) throws -> Void = { tx in
            for number in 0..<1000 {
                _ = try tx.appendAudit(
                    AuditEvent(
                        at: Timestamp.now(), actor: "test", action: "fill", target: "t-\(number)",
                        outcome: .success, details: #"{"pad":"\#(details)"}"#))
            }
        }
        await #expect(throws: StoreError.self) { try await store.write(bigWrite) }
        guard case .failing(.sqlite(let code, _, _), _) = store.health else {
            Issue.record("health is \(store.health) after a write into a full file system")
            return
        }
        #expect(code & 0xff == 13, "SQLITE_FULL")

        unlink(filler)
        #expect(await store.probe() == .healthy)
        try await store.write(bigWrite)
        #expect(store.health == .healthy)
    }
}

@Suite struct IdempotencyPurgeTests {
    let directory = TemporaryDirectory()

    @Test func purgeRemovesOnlyRecordsOlderThanADayAndCountsThem() async throws {
        let store = try Store(path: directory.file("sriovd.db"))
        defer { store.close() }
        let now = Int(Date().timeIntervalSince1970)
        let ages = ["now": 0, "1h": 3600, "23h59m": 24 * 3600 - 60, "24h1m": 24 * 3600 + 60, "2d": 48 * 3600]
        for (key, age) in ages {
            let record = IdempotencyRecord(
                key: key, requestHash: "h", status: 201, body: [1],
                createdAt: Timestamp.format(seconds: now - age, milliseconds: 0))
            try await store.write { try $0.putIdempotencyRecord(record) }
        }
        #expect(try await store.purgeExpiredIdempotencyRecords() == 2)
        for (key, age) in ages {
            let kept = try store.read { try $0.idempotencyRecord(key: key) } != nil
            #expect(kept == (age < 24 * 3600), "\(key)")
        }
        // The next periodic run finds nothing to remove.
        #expect(try await store.purgeExpiredIdempotencyRecords() == 0)
    }
}

/// A small tmpfs mounted for one test (needs CAP_SYS_ADMIN, as root in most containers).
final class Tmpfs: Sendable {
    let path: String

    /// Whether this process may mount a tmpfs: tried once, on a scratch folder.
    static let canMount: Bool = {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-tmpfs-" + UUID().uuidString)
        guard (try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: false)) != nil,
            let mount = try? Tmpfs(at: scratch.path, size: "64k")
        else { return false }
        mount.unmount()
        try? FileManager.default.removeItem(at: scratch)
        return true
    }()

    init(at path: String, size: String) throws {
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let status = Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
        guard status == 0 else { throw CocoaError(.fileWriteNoPermission) }
        self.path = path
    }

    /// Writes `file` until the file system is full.
    func fill(_ file: String) {
        let descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(descriptor) }
        let chunk = [UInt8](repeating: 0, count: 4096)
        while chunk.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) > 0 {}
    }

    func unmount() {
        _ = Self.run("/bin/umount", [path])
    }

    private static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
