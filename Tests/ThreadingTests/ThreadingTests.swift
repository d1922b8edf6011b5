import Glibc
import Testing
import Threading

@Suite struct ThreadingTests {
    /// What a spawned thread saw, handed back under the condition lock.
    final class Report: @unchecked Sendable {
        let lock = ConditionLock()
        var name: String?
        var isDone = false
    }

    @Test func spawnedThreadRunsUnderItsNameAndWakesTheWaiter() throws {
        let report = Report()
        try DetachedThread.spawn(name: "a-very-long-thread-name") {
            let comm = Self.threadName()
            report.lock.withLock {
                report.name = comm
                report.isDone = true
                report.lock.broadcast()
            }
        }
        report.lock.lock()
        while !report.isDone { report.lock.wait() }
        report.lock.unlock()
        // The kernel keeps 15 bytes of a thread's name.
        #expect(report.name == "a-very-long-thr")
    }

    @Test func aTimedWaitReturnsByItselfAfterItsTimeout() {
        let lock = ConditionLock()
        let start = ContinuousClock.now
        lock.withLock { lock.wait(timeout: .milliseconds(30)) }
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(30), "waited \(waited)")
        #expect(waited < .seconds(5), "waited \(waited)")
    }

    @Test func manyWaitersAllWakeOnBroadcast() throws {
        let report = Report()
        let woken = ConditionLock()
        final class Count: @unchecked Sendable { var value = 0 }
        let count = Count()
        for index in 0..<8 {
            try DetachedThread.spawn(name: "waiter-\(index)") {
                report.lock.lock()
                while !report.isDone { report.lock.wait() }
                report.lock.unlock()
                woken.withLock {
                    count.value += 1
                    woken.broadcast()
                }
            }
        }
        report.lock.withLock {
            report.isDone = true
            report.lock.broadcast()
        }
        woken.lock()
        while count.value < 8 { woken.wait() }
        woken.unlock()
        #expect(count.value == 8)
    }

    /// The calling thread's name, as /proc shows it.
    static func threadName() -> String? {
        guard let file = fopen("/proc/thread-self/comm", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, 64, file) != nil else { return nil }
        return String(cString: buffer).split(separator: "\n").first.map(String.init)
    }
}
