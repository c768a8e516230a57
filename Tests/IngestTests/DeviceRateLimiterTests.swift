import Telemetry
import Testing

@testable import Ingest

@Suite struct DeviceRateLimiterTests {
    let flooder = DeviceID(sensor: SensorID("flood-1")!)
    let calm = DeviceID(sensor: SensorID("calm-1")!)

    @Test func aBurstThenTheRate() {
        var limiter = DeviceRateLimiter(ratePerSecond: 10, burst: 20)
        let start: UInt64 = 5_000_000_000
        let burst = (0..<100).filter { _ in limiter.admit(flooder, rowID: 1, nowNanos: start) }.count
        #expect(burst == 20)
        // One second later: ten more tokens, not more.
        let next = (0..<100).filter { _ in limiter.admit(flooder, rowID: 1, nowNanos: start + 1_000_000_000) }.count
        #expect(next == 10)
        // Idle for a minute: back to the burst, never beyond it.
        let rested = (0..<100).filter { _ in limiter.admit(flooder, rowID: 1, nowNanos: start + 61_000_000_000) }.count
        #expect(rested == 20)
    }

    @Test func devicesDoNotShareABucket() {
        var limiter = DeviceRateLimiter(ratePerSecond: 1, burst: 5)
        for _ in 0..<50 { _ = limiter.admit(flooder, rowID: 1, nowNanos: 1) }
        let admitted = (0..<5).filter { _ in limiter.admit(calm, rowID: 2, nowNanos: 1) }.count
        #expect(admitted == 5)
    }

    /// A device new to the store has no row id until its first commit: the bucket it used
    /// meanwhile moves to its row id, so the burst is not granted a second time.
    @Test func aNewDeviceKeepsItsBucketOnceStored() {
        var limiter = DeviceRateLimiter(ratePerSecond: 1, burst: 5)
        let before = (0..<10).filter { _ in limiter.admit(flooder, rowID: nil, nowNanos: 1) }.count
        #expect(before == 5)
        limiter.settle { $0 == flooder ? 7 : nil }
        let afterCommit = limiter.admit(flooder, rowID: 7, nowNanos: 1)
        #expect(!afterCommit)
        // Another device at a neighbouring row id has its own bucket.
        let neighbour = limiter.admit(calm, rowID: 8, nowNanos: 1)
        #expect(neighbour)
        limiter.forget(flooder, rowID: 7)
        let afterErasure = limiter.admit(flooder, rowID: 7, nowNanos: 1)
        #expect(afterErasure)
    }

    @Test func aClockThatDoesNotAdvanceGivesNothingBack() {
        var limiter = DeviceRateLimiter(ratePerSecond: 100, burst: 1)
        let answers = [
            limiter.admit(flooder, rowID: 1, nowNanos: 10), limiter.admit(flooder, rowID: 1, nowNanos: 10),
            limiter.admit(flooder, rowID: 1, nowNanos: 5),
        ]
        #expect(answers == [true, false, false])
    }
}

@Suite struct RejectLogLimiterTests {
    @Test func logsTheFirstThenOncePerIntervalWithTheSuppressedCount() {
        var limiter = RejectLogLimiter(intervalNanos: 1_000)
        #expect(limiter.shouldLog(reason: "not_json", nowNanos: 10) == (true, 0))
        #expect(limiter.shouldLog(reason: "not_json", nowNanos: 20) == (false, 0))
        #expect(limiter.shouldLog(reason: "not_json", nowNanos: 30) == (false, 0))
        #expect(limiter.shouldLog(reason: "bad_ts", nowNanos: 40) == (true, 0))
        #expect(limiter.shouldLog(reason: "not_json", nowNanos: 1_100) == (true, 2))
    }
}
