import Foundation
import SRIOVCore
import SRIOVStore
import Testing

/// `GET /events` over real sockets: every audit record is an event, in order, resumable without loss or repeat.
@Suite(.serialized) struct EventStreamTests {
    /// Appends `count` audit records straight to the store, in batches, as the daemon's own writes would.
    private static func appendEvents(_ count: Int, to store: Store, action: String = "test.tick") async throws {
        var written = 0
        while written < count {
            let batch = min(500, count - written)
            let first = written
            try await store.write { tx in
                for index in first..<(first + batch) {
                    try tx.appendAudit(
                        AuditEvent(
                            at: Timestamp.now(), actor: "test", action: action, target: "t\(index)", outcome: .success))
                }
            }
            written += batch
        }
    }

    @Test func aStreamShowsAMutationAsItHappens() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let stream = try EventStreamClient(port: daemon.port, path: "/events?type=allocation.")
        try stream.readHead()
        #expect(stream.status == 200)
        #expect(stream.headers["content-type"] == "text/event-stream")
        #expect(stream.headers["content-length"] == nil)
        let created = try await daemon.client().request(
            "POST", "/allocations", json: ["owner": "k8s:default/web-0", "pf": "0000:3b:00.0"])
        #expect(created.status == 201)
        let event = try #require(try stream.next())
        #expect(event.type == "allocation.created")
        #expect(event.object["owner"] as? String == "k8s:default/web-0")
        #expect(event.object["pf"] as? String == "0000:3b:00.0")
        #expect(event.id == event.object["id"] as? Int64 ?? (event.object["id"] as? Int).map(Int64.init))
        await daemon.stop()
    }

    /// 10,000 events written as fast as the store takes them; the subscriber disconnects at least three times
    /// (and is cut off whenever it falls too far behind) and resumes each time with Last-Event-ID, or `?after=`:
    /// it sees every event exactly once, in order.
    @Test func resumingLosesAndRepeatsNothingAcross10000Events() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let start = try daemon.store.read { try $0.auditIDRange()?.last } ?? 0
        let total = 10_000
        let store = daemon.store
        let writer = Task { try await Self.appendEvents(total, to: store) }
        var seen: [Int64] = []
        var resume = start
        var connections = 0
        while seen.count < total {
            connections += 1
            #expect(connections < 200, "resumes make progress")
            let byQuery = connections % 3 == 0
            let stream = try EventStreamClient(
                port: daemon.port, path: "/events?type=test." + (byQuery ? "&after=\(resume)" : ""),
                headers: byQuery ? [:] : ["Last-Event-ID": String(resume)])
            try stream.readHead()
            // The first three connections leave on their own after a while; later ones read until the end or a
            // cut-off.
            var quota = connections <= 3 ? connections * 1_000 : Int.max
            while quota > 0, let event = try stream.next(), event.type != "cutoff" {
                let id = try #require(event.id)
                seen.append(id)
                resume = id
                quota -= 1
                if seen.count == total { break }
            }
        }
        try await writer.value
        #expect(connections >= 4)
        #expect(seen == Array((start + 1)...(start + Int64(total))), "every event once, in order")
        await daemon.stop()
    }

    @Test func filtersPickByTypePFVFAndOwner() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let client = try daemon.client()
        let byOwner = try EventStreamClient(port: daemon.port, path: "/events?owner=vm:b")
        let byPF = try EventStreamClient(port: daemon.port, path: "/events?pf=0000:3b:00.0&type=allocation.")
        try byOwner.readHead()
        try byPF.readHead()
        _ = try await client.request("POST", "/allocations", json: ["owner": "vm:a", "pf": "0000:3b:00.0"])
        let second = try await client.request("POST", "/allocations", json: ["owner": "vm:b", "pf": "0000:3b:00.0"])
        let id = try #require(second.object["id"] as? String)
        #expect(try await client.request("DELETE", "/allocations/\(id)").status == 204)
        let owned = [try byOwner.next(), try byOwner.next()].compactMap { $0?.type }
        #expect(owned == ["allocation.created", "allocation.released"])
        let onPF = [try byPF.next(), try byPF.next(), try byPF.next()].compactMap { $0?.object["owner"] as? String }
        #expect(onPF == ["vm:a", "vm:b", "vm:b"])
        let bad = try await client.get("/events?vf=not-an-address")
        #expect(bad.status == 400 && bad.object["parameter"] as? String == "vf")
        let badID = try await client.request("GET", "/events", headers: ["Last-Event-ID": "-3"])
        #expect(badID.status == 400 && badID.object["parameter"] as? String == "Last-Event-ID")
        await daemon.stop()
    }

    /// An id the log does not hold (newer than any, as after the database was replaced) gets a `reset`.
    @Test func anIDTheLogDoesNotHoldGetsAReset() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let stream = try EventStreamClient(port: daemon.port, headers: ["Last-Event-ID": "99999999"])
        try stream.readHead()
        let reset = try #require(try stream.next())
        #expect(reset.type == "reset")
        #expect(reset.object["requested_after"] as? Int == 99_999_999)
        try await Self.appendEvents(1, to: daemon.store, action: "test.after-reset")
        #expect(try stream.next()?.type == "test.after-reset", "then the live stream")
        await daemon.stop()
    }

    /// A subscriber that does not read falls behind what the hub keeps and is cut off with a last event saying
    /// where to resume; a subscriber that keeps up gets every event meanwhile.
    @Test func aSlowSubscriberIsCutOffWithoutHarmingOthers() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let start = try daemon.store.read { try $0.auditIDRange()?.last } ?? 0
        let slow = try EventStreamClient(port: daemon.port, path: "/events?type=test.", receiveBuffer: 4096)
        let fast = try EventStreamClient(port: daemon.port, path: "/events?type=test.")
        try slow.readHead()
        try fast.readHead()
        let total = 40_000
        let progress = Progress()
        let store = daemon.store
        // The writer stays within a few thousand events of the fast reader: fast enough that the slow one, which
        // reads nothing, falls more than the hub's ring behind.
        let writer = Task {
            for _ in 0..<(total / 500) {
                try await waitUntil(timeout: .seconds(30), "the fast subscriber keeps up") {
                    progress.received >= progress.written - 3_000
                }
                try await Self.appendEvents(500, to: store)
                progress.add(written: 500)
            }
        }
        while progress.received < total, let event = try fast.next() {
            #expect(event.id == start + Int64(progress.received) + 1, "\(event.type) \(event.data)")
            progress.add(received: 1)
        }
        try await writer.value
        #expect(progress.received == total, "the fast subscriber got every event")
        var last: EventStreamClient.Event?
        while let event = try slow.next() { last = event }
        #expect(last?.type == "cutoff", "the slow one's stream ends with a cut-off")
        let resumeAfter = try #require(last?.object["resume_after"] as? Int)
        #expect(resumeAfter >= Int(start) && resumeAfter < Int(start) + total)
        await daemon.stop()
    }

    final class Progress: @unchecked Sendable {
        private let lock = NSLock()
        private var counts = (written: 0, received: 0)

        var written: Int { lock.withLock { counts.written } }
        var received: Int { lock.withLock { counts.received } }
        func add(written: Int = 0, received: Int = 0) {
            lock.withLock {
                counts.written += written
                counts.received += received
            }
        }
    }

    /// A change of the host that sriovd did not make (a PF's link going down) is an event with actor `kernel`.
    @Test func aLinkGoingDownBehindSriovdsBackIsAKernelEvent() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let stream = try EventStreamClient(port: daemon.port, path: "/events?type=link.")
        try stream.readHead()
        let net = daemon.directory.appendingPathComponent("bus/pci/devices/0000:5e:00.0/net")
        let interface = try #require(try FileManager.default.contentsOfDirectory(atPath: net.path).first)
        try "down\n".write(to: net.appendingPathComponent("\(interface)/operstate"), atomically: false, encoding: .utf8)
        // The periodic rescan, or any observed one (a reconcile run here), notices it.
        #expect(try await daemon.client().request("POST", "/reconcile").status == 200)
        let event = try #require(try stream.next())
        #expect(event.type == "link.down")
        #expect(event.object["actor"] as? String == "kernel")
        #expect(event.object["pf"] as? String == "0000:5e:00.0")
        await daemon.stop()
    }
}
