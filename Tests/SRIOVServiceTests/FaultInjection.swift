import Foundation
import HostSimulator
import Netlink
import SRIOVHardware
import Synchronization

@testable import SRIOVStore

/// Plays a fault at a chosen hardware write: the simulated kernel's rtnetlink, with a hook run before each
/// `RTM_NEWLINK` reaches it (the write about to happen is the N-th of the test). The hook may take the database's
/// write lock, as another process would, or make the kernel refuse the write.
final class FaultInjector: Sendable {
    private struct State {
        var writes = 0
        var hooks: [Int: @Sendable () -> Void] = [:]
        /// Writes from this one on are refused.
        var refusingFrom: Int?
    }

    private let state = Mutex(State())

    /// How many `RTM_NEWLINK` requests reached the hook so far.
    var writes: Int { state.withLock { $0.writes } }

    /// Runs `hook` just before the `number`-th `RTM_NEWLINK` from now (1: the next).
    func at(write number: Int, _ hook: @escaping @Sendable () -> Void) {
        state.withLock { $0.hooks[$0.writes + number] = hook }
    }

    /// Every `RTM_NEWLINK` from the `number`-th from now on is refused with `EIO`, until `stopRefusing`.
    func refuse(from number: Int) { state.withLock { $0.refusingFrom = $0.writes + number } }

    func stopRefusing() { state.withLock { $0.refusingFrom = nil } }

    fileprivate func beforeWrite() throws(NetlinkError) {
        let (hook, refuse) = state.withLock { state in
            state.writes += 1
            return (
                state.hooks.removeValue(forKey: state.writes), state.refusingFrom.map { state.writes >= $0 } ?? false
            )
        }
        hook?()
        if refuse { throw NetlinkError(errno: EIO, context: "refused by the test's fault injector") }
    }

    /// The simulated host in `directory`, its rtnetlink behind this injector.
    func host(at directory: URL) -> HardwareHost {
        let simulated = HardwareHost.simulated(at: directory)
        let transport = HookedTransport(inner: simulated.netlink.transport, injector: self)
        return HardwareHost(sysfs: simulated.sysfs, netlink: RTNetlinkClient(transport: transport))
    }
}

private struct HookedTransport: RTNetlinkTransport {
    let inner: any RTNetlinkTransport
    let injector: FaultInjector

    func request(_ message: [UInt8]) throws(NetlinkError) -> [[UInt8]] {
        // nlmsghdr: length (4 bytes), then the type; RTM_NEWLINK is 16.
        if message.count >= 6, UInt16(message[4]) | UInt16(message[5]) << 8 == 16 { try injector.beforeWrite() }
        return try inner.request(message)
    }
}

/// Another process's hold on the database file: `BEGIN EXCLUSIVE` on a connection of its own, until `release`.
final class DatabaseLock: @unchecked Sendable {
    private let database: Database
    private let lock = NSLock()
    private var held = true

    init(path: String) throws {
        database = try Database(path: path, flags: 0x0000_0002, busyTimeoutMilliseconds: 2000)  // SQLITE_OPEN_READWRITE
        try database.execute("BEGIN EXCLUSIVE")
    }

    func release() {
        lock.lock()
        defer { lock.unlock() }
        guard held else { return }
        held = false
        try? database.execute("ROLLBACK")
        database.close()
    }

    deinit { release() }
}
