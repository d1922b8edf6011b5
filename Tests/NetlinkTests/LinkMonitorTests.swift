import Foundation
import Synchronization
import Testing

@testable import Netlink

/// The link monitor on this machine's kernel: a veth pair made and set down and up shows as link notifications.
@Suite(.serialized) struct LinkMonitorTests {
    static func ip(_ arguments: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = arguments.split(separator: " ").map(String.init)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
    }

    @Test func aLinkSetDownAndUpIsReported() async throws {
        let name = "sriovdlm\(getpid() % 10000)"
        let seen = Mutex<[(name: String, operState: UInt8?)]>([])
        let monitor = try NetlinkMonitor(links: { link in seen.withLock { $0.append((link.name, link.operState)) } })
        defer { monitor.stop() }
        try Self.ip("link add \(name) type veth peer name \(name)p")
        defer { try? Self.ip("link del \(name)") }
        try Self.ip("link set \(name) up")
        try Self.ip("link set \(name)p up")
        try Self.ip("link set \(name) down")
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !seen.withLock({ $0.contains { $0.name == name && $0.operState == 2 } }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        let reports = seen.withLock { $0.filter { $0.name == name } }
        #expect(!reports.isEmpty, "the new link was reported")
        #expect(reports.contains { $0.operState == 2 }, "its going down was reported (IF_OPER_DOWN)")
    }
}
