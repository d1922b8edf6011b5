import Foundation
import Testing

@testable import SRIOVService

/// The health monitor's wake-up: a signal ends a wait at once, a signal with nobody waiting is kept for the next
/// wait, the interval bounds a wait, and cancelling the waiting task ends it. Every bound below is a limit for a
/// failure, not a pause: each wait returns as soon as its cause happens.
@Suite struct HealthWakeTests {
    /// Runs `body` and returns how long it took.
    private func timed(_ body: () async -> Void) async -> Duration {
        let start = ContinuousClock.now
        await body()
        return ContinuousClock.now - start
    }

    @Test func aSignalKeptFromBeforeTheWaitEndsItAtOnce() async {
        let wake = HealthWake()
        wake.signal()
        let took = await timed { await wake.wait(upTo: .seconds(30)) }
        #expect(took < .seconds(5))
    }

    @Test func aSignalDuringTheWaitEndsIt() async {
        let wake = HealthWake()
        let waiter = Task { await timed { await wake.wait(upTo: .seconds(30)) } }
        // Signal until the waiter has returned: a signal before it waits is kept, so one is enough either way.
        wake.signal()
        let took = await waiter.value
        #expect(took < .seconds(5))
        // The signal was used up: the next wait runs to its interval.
        let next = await timed { await wake.wait(upTo: .milliseconds(200)) }
        #expect(next >= .milliseconds(200))
    }

    @Test func theIntervalBoundsAWait() async {
        let wake = HealthWake()
        let took = await timed { await wake.wait(upTo: .milliseconds(100)) }
        #expect(took >= .milliseconds(100))
        #expect(took < .seconds(10))
    }

    @Test func cancellingTheWaitingTaskEndsIt() async {
        let wake = HealthWake()
        let waiter = Task { await timed { await wake.wait(upTo: .seconds(30)) } }
        waiter.cancel()
        let took = await waiter.value
        #expect(took < .seconds(5))
    }
}
