import Foundation
import Logging
import SRIOVCore
import SRIOVStore
import Synchronization
import Testing

@testable import SRIOVService

/// `--audit-retention`: old events archived (NDJSON, a file a month, fsynced) and only then deleted, idempotently
/// across a run cut off between the two; the event stream told when its next events were removed.
@Suite struct AuditRetentionTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-retention-\(UUID())").path
    let now = Int(time(nil))

    init() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// `days` days before now, formatted, plus `minutes`.
    func stamp(daysAgo days: Int, minutes: Int = 0) -> String {
        Timestamp.format(seconds: now - days * 86_400 + minutes * 60, milliseconds: 0)
    }

    /// 20 events 100 days old, 20 events 70 days old (two or three months), then 5 of today; their ids.
    func fill(_ store: Store) async throws -> (old: [Int64], recent: [Int64]) {
        var old: [Int64] = []
        for index in 0..<40 {
            let at = stamp(daysAgo: index < 20 ? 100 : 70, minutes: index)
            let event = AuditEvent(
                at: at, actor: "alice", action: "allocation.create", target: "a\(index)", outcome: .success,
                details: #"{"n":\#(index)}"#)
            old.append(try await store.write { try $0.appendAudit(event) })
        }
        var recent: [Int64] = []
        for index in 0..<5 {
            let event = AuditEvent(
                at: Timestamp.now(), actor: "bob", action: "allocation.release", target: "r\(index)", outcome: .success)
            recent.append(try await store.write { try $0.appendAudit(event) })
        }
        return (old, recent)
    }

    /// Every archived line, by file, decoded.
    func archived() throws -> [String: [[String: Any]]] {
        var result: [String: [[String: Any]]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory + "/archive") {
            let text = try String(contentsOfFile: directory + "/archive/" + name, encoding: .utf8)
            #expect(text.hasSuffix("\n"), "\(name) ends with a whole line")
            result[name] = try text.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }
        return result
    }

    func retention(_ store: Store) -> AuditRetention {
        AuditRetention(store: store, logger: Logger(label: "test"), days: 30, archiveDirectory: directory + "/archive")
    }

    @Test func oldEventsAreArchivedByMonthThenDeletedAndTheRunIsAudited() async throws {
        let store = try Store(path: directory + "/sriovd.db")
        defer { store.close() }
        let (old, recent) = try await fill(store)
        let outcome = try await retention(store).run(now: now)
        #expect(outcome.removed == 40)

        let files = try archived()
        let expectedFiles = Set(
            (0..<40).map { AuditArchive.fileName(at: stamp(daysAgo: $0 < 20 ? 100 : 70, minutes: $0)) })
        #expect(Set(files.keys) == expectedFiles)
        #expect(outcome.archived.values.reduce(0, +) == 40)
        let lines = files.values.flatMap { $0 }.sorted { ($0["id"] as! Int) < ($1["id"] as! Int) }
        #expect(lines.map { Int64($0["id"] as! Int) } == old, "each old event once")
        #expect(lines.first?["details"] as? [String: Int] == ["n": 0], "details are JSON, as GET /audit serves them")
        for (name, events) in files {
            #expect(events.allSatisfy { AuditArchive.fileName(at: $0["at"] as! String) == name }, "by month")
        }

        let left = try store.read { try $0.auditEvents(AuditFilter(limit: 500)) }
        #expect(left.prefix(5).map(\.id) == recent, "the recent events stay")
        let run = try #require(left.last)
        #expect(run.action == "audit.retention" && run.actor == "retention" && run.outcome == .success)
        let details = try #require(try JSONSerialization.jsonObject(with: Data(run.details.utf8)) as? [String: Any])
        #expect(details["removed"] as? Int == 40 && details["through_id"] as? Int == Int(old.last!))
        #expect(details["files"] as? [String] == expectedFiles.sorted())

        let again = try await retention(store).run(now: now)
        #expect(again.removed == 0 && again.archived.isEmpty, "nothing old is left")
    }

    /// The run is cut off after the archive is durable and before the delete commits (as a crash there would), and a
    /// later write was torn mid-line: the next run archives nothing twice and loses nothing.
    @Test func aRunCutOffBetweenArchiveAndDeleteLosesAndRepeatsNothing() async throws {
        let store = try Store(path: directory + "/sriovd.db")
        defer { store.close() }
        let (old, _) = try await fill(store)
        struct Crash: Error {}
        var crashing = retention(store)
        crashing.afterArchiving = { throw Crash() }
        await #expect(throws: Crash.self) { try await crashing.run(now: now) }
        #expect(try archived().values.map(\.count).reduce(0, +) == 40, "archived")
        #expect(
            try store.read { try $0.auditEvents(AuditFilter(limit: 500)) }.prefix(40).map(\.id) == old, "not deleted")
        let failure = try #require(try store.read { try $0.auditEvents(AuditFilter(action: "audit.retention")) }.last)
        #expect(failure.outcome == .failure, "the cut-off run is on record")

        // A torn line at the end of the newest file: a write cut off in the middle.
        let newest = try #require(try FileManager.default.contentsOfDirectory(atPath: directory + "/archive").max())
        let handle = try #require(FileHandle(forWritingAtPath: directory + "/archive/" + newest))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"id":999,"at":"20"#.utf8))
        try handle.close()

        let outcome = try await retention(store).run(now: now)
        #expect(outcome.removed == 40)
        #expect(outcome.archived.isEmpty, "every event was in the archive already")
        let ids = try archived().values.flatMap { $0 }.map { Int64($0["id"] as! Int) }
        #expect(ids.sorted() == old, "each old event exactly once, and the torn line is gone")
    }

    /// The smaller chunks each commit with their own audit event.
    @Test func aLargeRemovalGoesInChunksEachOnRecord() async throws {
        let store = try Store(path: directory + "/sriovd.db")
        defer { store.close() }
        _ = try await fill(store)
        var chunked = retention(store)
        chunked.chunk = 15
        let outcome = try await chunked.run(now: now)
        #expect(outcome.removed == 40)
        let runs = try store.read { try $0.auditEvents(AuditFilter(action: "audit.retention")) }
        #expect(runs.count == 3)
        let removed = try runs.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.details.utf8)) as? [String: Any])["removed"]
                as? Int
        }
        #expect(removed == [15, 15, 10])
    }

    /// An archive folder that cannot be written: nothing is deleted, and the failure is on record.
    @Test func anUnwritableArchiveDeletesNothing() async throws {
        let store = try Store(path: directory + "/sriovd.db")
        defer { store.close() }
        _ = try await fill(store)
        // A file where the folder should be.
        #expect(FileManager.default.createFile(atPath: directory + "/archive", contents: Data()))
        await #expect(throws: (any Error).self) { try await retention(store).run(now: now) }
        #expect(try store.read { try $0.auditEvents(AuditFilter(limit: 500)) }.count == 46, "45 events and the failure")
        let failure = try #require(try store.read { try $0.auditEvents(AuditFilter(action: "audit.retention")) }.last)
        #expect(failure.outcome == .failure && failure.error?.hasPrefix("archive_failed") == true)
    }

    /// A sink whose queue holds `capacity` frames until `drain`.
    final class SmallSink: EventSink, @unchecked Sendable {
        private let lock = NSLock()
        private var frames: [String] = []
        private var capacity: Int
        private var drained: (@Sendable () -> Void)?
        var isClosed: Bool { false }

        init(capacity: Int) { self.capacity = capacity }

        func send(_ bytes: [UInt8], force: Bool) -> Bool {
            lock.withLock {
                guard force || frames.count < capacity else { return false }
                frames.append(String(decoding: bytes, as: UTF8.self))
                return true
            }
        }

        func drain(capacity: Int) {
            let body = lock.withLock { () -> (@Sendable () -> Void)? in
                self.capacity = capacity
                return drained
            }
            body?()
        }

        func finish() {}
        func onDrained(_ body: @escaping @Sendable () -> Void) { lock.withLock { drained = body } }
        var received: [String] { lock.withLock { frames } }
    }

    /// A subscriber catching up from the database whose next events retention deletes meanwhile gets a `reset`,
    /// instead of being moved past them without a word.
    @Test func aCatchingUpSubscriberIsToldWhenRetentionRemovedItsNextEvents() async throws {
        // The old events first, as in a database that has served a while; then the daemon on it.
        let prefilled = try Store(path: directory + "/sriovd.db")
        let (old, _) = try await fill(prefilled)
        prefilled.close()
        let daemon = try await TestDaemon(directory: URL(fileURLWithPath: directory))
        defer { daemon.removeFiles() }
        let hub = EventHub(
            store: daemon.store, inventory: daemon.core.inventory, logger: Logger(label: "test"),
            limits: EventHub.Limits(ring: 4))
        defer { hub.stop() }
        let sink = SmallSink(capacity: 3)
        _ = try hub.subscribe(EventFilter(), after: old[0], sink: sink)
        try await waitUntil("the subscriber's queue is full") { sink.received.count == 3 }
        #expect(sink.received.allSatisfy { $0.contains("allocation.create") })

        let retention = AuditRetention(
            store: daemon.store, logger: Logger(label: "test"), days: 30,
            archiveDirectory: daemon.directory.path + "/archive")
        #expect(try await retention.run(now: now).removed == 40)
        sink.drain(capacity: 1000)
        try await waitUntil("a reset") { sink.received.contains { $0.contains("event: reset") } }
        let reset = try #require(sink.received.first { $0.contains("event: reset") })
        #expect(reset.contains(#""requested_after":\#(old[3])"#), "\(reset)")
        let after = sink.received.drop { !$0.contains("event: reset") }.dropFirst()
        #expect(!after.contains { $0.contains("allocation.create") }, "no deleted event is sent after the reset")
        await daemon.stop()
    }
}

/// The built binary: `--audit-retention` runs at start, archiving beside the database by default.
@Suite(.serialized) struct AuditRetentionDaemonTests {
    @Test func theDaemonRunsRetentionAtStart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sriovd-proc-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try Store(path: folder + "/sriovd.db")
        let old = Timestamp.format(seconds: Int(time(nil)) - 400 * 86_400, milliseconds: 0)
        for index in 0..<25 {
            try await store.write {
                try $0.appendAudit(
                    AuditEvent(
                        at: old, actor: "alice", action: "allocation.create", target: "a\(index)", outcome: .success))
            }
        }
        store.close()

        let refused = try await DaemonProcess.run(["serve", "--audit-archive", folder + "/elsewhere"])
        #expect(refused.status != 0 && refused.stderr.contains("--audit-archive needs --audit-retention"))

        let daemon = try await DaemonProcess.start(
            ["serve", "--listen", "127.0.0.1:0"], environment: ["SRIOVD_AUDIT_RETENTION": "365"], directory: folder)
        let client = try TestClient(port: try #require(daemon.port))
        try await waitUntil("the retention run at start is on record") {
            try await client.get("/audit?action=audit.retention").items.count == 1
        }
        let run = try #require(try await client.get("/audit?action=audit.retention").items.first)
        #expect((run["details"] as? [String: Any])?["removed"] as? Int == 25)
        #expect(try await client.get("/audit?actor=alice").items.isEmpty)
        let file = folder + "/audit-archive/" + AuditArchive.fileName(at: old)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 25)
        #expect(try await daemon.stop() == 0)
    }
}
