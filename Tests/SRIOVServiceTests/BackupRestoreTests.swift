import Foundation
import Glibc
import SRIOVStore
import Synchronization
import Testing

/// The README's restore procedure, followed for real with the built binary on a simulated host: serve, allocate,
/// `sriovd backup`, allocate more, stop, put the copy back, start, read the reconcile report.
@Suite(.serialized) struct BackupRestoreTests {
    @Test func restoringABackupForgetsLaterAllocationsAndTheReconcilerSaysWhatItFound() async throws {
        let daemon = try await DaemonProcess.start(["serve", "--listen", "127.0.0.1:0"])
        let folder = daemon.directory
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let client = try TestClient(port: try #require(daemon.port))
        let pf = "0000:3b:00.0"
        let before = try await client.request("POST", "/allocations", json: ["owner": "vm:before", "pf": pf])
        #expect(before.status == 201, "\(before.text)")

        let backup = try await DaemonProcess.run(
            ["backup", folder + "/backup.db", "--db", folder + "/sriovd.db"], simulate: false)
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("1 allocations") && backup.stdout.contains("quick_check ok"), "\(backup.stdout)")

        let plain = try await client.request("POST", "/allocations", json: ["owner": "vm:after-plain", "pf": pf])
        let configured = try await client.request(
            "POST", "/allocations",
            json: ["owner": "vm:after-mac", "pf": pf, "config": ["mac": "02:00:00:00:be:ef", "vlan": 42]])
        #expect(plain.status == 201 && configured.status == 201, "\(plain.text) \(configured.text)")
        let plainVF = try #require(plain.object["vf"] as? String)
        let configuredVF = try #require(configured.object["vf"] as? String)
        #expect(try await daemon.stop() == 0)

        // Restore: the copy in place of the database, without the old database's -wal and -shm.
        for suffix in ["", "-wal", "-shm"] { unlink(folder + "/sriovd.db" + suffix) }
        try FileManager.default.copyItem(atPath: folder + "/backup.db", toPath: folder + "/sriovd.db")

        let again = try await DaemonProcess.start(["serve", "--listen", "127.0.0.1:0"], directory: folder)
        let restored = try TestClient(port: try #require(again.port))
        let owners = try await restored.get("/allocations?state=all").items.compactMap { $0["owner"] as? String }
        #expect(owners == ["vm:before"], "the restored database knows only what the backup held")

        let report = try await restored.get("/reconcile")
        #expect(report.status == 200)
        let actions = report.object["actions"] as? [[String: Any]] ?? []
        let dirty = actions.filter { $0["kind"] as? String == "vf.dirty" }.compactMap { $0["target"] as? String }
        #expect(dirty == [configuredVF], "the VF set up after the backup is reported dirty: \(actions)")
        // Neither VF is released or restored by the reconciler: the one with settings stays out of the pool until
        // reset; the one without looks free and is handed out again.
        let configuredNow = try await restored.get("/vfs/\(configuredVF)").object
        #expect((configuredNow["settings"] as? [String: Any])?["mac"] as? String == "02:00:00:00:be:ef")
        let next = try await restored.request("POST", "/allocations", json: ["owner": "vm:next", "pf": pf])
        #expect(next.status == 201)
        #expect(next.object["vf"] as? String == plainVF, "the lowest free VF, which vm:after-plain held before")
        // An operator resets it (the settings become its baseline): it is handed out again.
        let reset = try await restored.request(
            "PATCH", "/vfs/\(configuredVF)", json: ["mac": "00:00:00:00:00:00", "vlan": 0])
        #expect(reset.status == 200, "\(reset.text)")
        let afterReset = try await restored.request("POST", "/allocations", json: ["owner": "vm:last", "pf": pf])
        #expect(afterReset.object["vf"] as? String == configuredVF, "\(afterReset.text)")
        #expect(try await again.stop() == 0)
    }

    /// `sriovd backup` as its own process against a daemon that allocates and releases meanwhile: every copy is one
    /// commit's database (as many allocations as successful `allocation.create` events, which commit together),
    /// opens as sriovd opens its database, and is readable by its owner only.
    @Test func backupsOfALiveDaemonWhileAllocationsAreMadeAreConsistent() async throws {
        let daemon = try await DaemonProcess.start(["serve", "--listen", "127.0.0.1:0", "--no-access-log"])
        let folder = daemon.directory
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try #require(daemon.port)
        let stop = Atomic(false)
        let churn = Task {
            var made = 0
            let client = try TestClient(port: port)
            while !stop.load(ordering: .acquiring) {
                let created = try await client.request(
                    "POST", "/allocations", json: ["owner": "vm:churn-\(made)", "pf": "0000:3b:00.0"])
                guard created.status == 201, let id = created.object["id"] as? String else { continue }
                made += 1
                _ = try await client.request("DELETE", "/allocations/\(id)")
            }
            return made
        }
        var counts: [Int] = []
        for number in 0..<6 {
            try await waitUntil("more allocations since the last copy") {
                try await TestClient(port: port).get("/allocations?state=all&limit=500").items.count > number * 3
            }
            let out = folder + "/copy-\(number).db"
            let backup = try await DaemonProcess.run(["backup", out, "--db", folder + "/sriovd.db"], simulate: false)
            #expect(backup.status == 0, "\(backup.stderr)")
            var info = stat()
            #expect(stat(out, &info) == 0 && info.st_mode & 0o777 == 0o600)
            let copy = try Store(path: out)
            let allocations = try copy.read { try $0.allocations(AllocationFilter(state: nil, limit: 500)).items.count }
            let created = try copy.read {
                try $0.auditEvents(AuditFilter(action: "allocation.create", limit: 500)).filter {
                    $0.outcome == .success
                }
                .count
            }
            copy.close()
            #expect(allocations == created, "copy \(number): an allocation and its audit event travel together")
            counts.append(allocations)
        }
        stop.store(true, ordering: .releasing)
        let made = try await churn.value
        #expect(try await daemon.stop() == 0)
        #expect(counts == counts.sorted() && counts.last! > counts.first!, "copies of a growing database: \(counts)")
        #expect(made >= counts.last!, "made \(made)")
    }
}
