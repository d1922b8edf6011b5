import Foundation
import SRIOVCore
import SRIOVStore
import Testing

/// `GET /audit?format=ndjson`, read by curl as a SIEM's collector would: any range, in id order, each event once,
/// more than the stream's queue holds.
@Suite struct AuditExportTests {
    /// Runs curl to the end; its output and the response's head.
    private func curl(_ port: UInt16, _ path: String) throws -> (head: String, body: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "-D", "/dev/stderr", "--max-time", "60", "http://127.0.0.1:\(port)\(path)"]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let body = out.fileHandleForReading.readDataToEndOfFile()
        let head = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "curl: \(String(decoding: head, as: UTF8.self))")
        return (String(decoding: head, as: UTF8.self), String(decoding: body, as: UTF8.self))
    }

    @Test func streamsAnyRangeInOrderBeyondTheQueue() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl missing: run .ci/run")
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        // About 4 MB of events: four times what the stream may queue.
        let padding = String(repeating: "x", count: 800)
        var ids: [Int64] = []
        for batch in 0..<10 {
            ids += try await daemon.store.write { tx in
                try (0..<500).map { index in
                    try tx.appendAudit(
                        AuditEvent(
                            at: Timestamp.now(), actor: "siem-test", action: "test.export", target: "t\(batch)",
                            outcome: .success, details: #"{"n":\#(batch * 500 + index),"pad":"\#(padding)"}"#))
                }
            }
        }
        let whole = try await onThread { try curl(daemon.port, "/audit?format=ndjson&actor=siem-test") }
        #expect(whole.head.lowercased().contains("content-type: application/x-ndjson"), "\(whole.head)")
        #expect(whole.body.hasSuffix("\n"))
        let lines = whole.body.split(separator: "\n")
        let decoded = try lines.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(decoded.map { Int64($0["id"] as! Int) } == ids, "every event once, in id order")
        #expect((decoded.last?["details"] as? [String: Any])?["n"] as? Int == 4999)

        // A range: after an id, up to a time, by target.
        let cut = ids[1234]
        let range = try await onThread { try curl(daemon.port, "/audit?format=ndjson&after=\(cut)&target=t3") }
        let rangeIDs = try range.body.split(separator: "\n").map {
            Int64(try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["id"] as! Int)
        }
        #expect(rangeIDs == Array(ids[1500..<2000]), "target t3 is events 1500-1999, all after \(cut)")

        // With limit: at most that many, the first of the range in id order.
        let capped = try await onThread { try curl(daemon.port, "/audit?format=ndjson&after=\(cut)&limit=300") }
        let cappedIDs = try capped.body.split(separator: "\n").map {
            Int64(try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["id"] as! Int)
        }
        #expect(cappedIDs == Array(ids[1235..<1535]), "limit=300 after \(cut): the next 300 events")
        let client = try daemon.client()
        #expect(try await client.get("/audit?format=ndjson&limit=0").status == 400, "limit is checked as for pages")
        #expect(try await client.get("/audit?format=xml").status == 400)
        #expect(try await daemon.client().get("/audit?format=json&limit=2").items.count == 2, "pages as before")
        await daemon.stop()
    }
}
