import Foundation
import Logging
import SRIOVCore
import SRIOVStore
import Synchronization
import Testing

@testable import SRIOVService

/// The hub with a sink of the test's own: its heartbeat and its limit on subscribers.
@Suite struct EventHubTests {
    final class Sink: EventSink, @unchecked Sendable {
        private let lock = NSLock()
        private var frames: [String] = []
        var isClosed: Bool { false }

        func send(_ bytes: [UInt8], force: Bool) -> Bool {
            lock.withLock { frames.append(String(decoding: bytes, as: UTF8.self)) }
            return true
        }

        func finish() {}
        func onDrained(_ body: @escaping @Sendable () -> Void) {}
        var received: [String] { lock.withLock { frames } }
    }

    private func hub(_ daemon: TestDaemon, limits: EventHub.Limits) -> EventHub {
        EventHub(store: daemon.store, inventory: daemon.core.inventory, logger: Logger(label: "test"), limits: limits)
    }

    @Test func anIdleStreamGetsCommentHeartbeats() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let hub = hub(daemon, limits: EventHub.Limits(heartbeat: .milliseconds(50)))
        defer { hub.stop() }
        let sink = Sink()
        _ = try hub.subscribe(EventFilter(), after: nil, sink: sink)
        try await waitUntil(timeout: .seconds(5), "two heartbeats") {
            sink.received.filter { $0 == ": heartbeat\n\n" }.count >= 2
        }
        await daemon.stop()
    }

    @Test func subscribersBeyondTheLimitAreRefused() async throws {
        let daemon = try await TestDaemon()
        defer { daemon.removeFiles() }
        let hub = hub(daemon, limits: EventHub.Limits(subscribers: 2))
        defer { hub.stop() }
        _ = try hub.subscribe(EventFilter(), after: nil, sink: Sink())
        _ = try hub.subscribe(EventFilter(), after: nil, sink: Sink())
        #expect(throws: EventHub.SubscribeError.self) { try hub.subscribe(EventFilter(), after: nil, sink: Sink()) }
        await daemon.stop()
    }
}
