import Telemetry
import Testing

@testable import Ingest

@Suite struct DeviceRateLimiterTests {
    let flooder = DeviceID(sensor: SensorID("flood-1")!)
    let calm = DeviceID(sensor: SensorID("calm-1")!)

    @Test func aBurstThenTheRate() {
        var limiter = DeviceRateLimiter(ratePerSecond: 10, burst: 20)
        let start: UInt64 = 5_000_000_000
        let burst = (0..<100).filter { _ in limiter.admit(flooder, nowNanos: start) }.count
        #expect(burst == 20)
        // One second later: ten more tokens, not more.
        let next = (0..<100).filter { _ in limiter.admit(flooder, nowNanos: start + 1_000_000_000) }.count
        #expect(next == 10)
        // Idle for a minute: back to the burst, never beyond it.
        let rested = (0..<100).filter { _ in limiter.admit(flooder, nowNanos: start + 61_000_000_000) }.count
        #expect(rested == 20)
    }

    @Test func devicesDoNotShareABucket() {
        var limiter = DeviceRateLimiter(ratePerSecond: 1, burst: 5)
        for _ in 0..<50 { _ = limiter.admit(flooder, nowNanos: 1) }
        let admitted = (0..<5).filter { _ in limiter.admit(calm, nowNanos: 1) }.count
        #expect(admitted == 5)
        #expect(limiter.devices == 2)
    }

    @Test func aClockThatDoesNotAdvanceGivesNothingBack() {
        var limiter = DeviceRateLimiter(ratePerSecond: 100, burst: 1)
        let answers = [
            limiter.admit(flooder, nowNanos: 10), limiter.admit(flooder, nowNanos: 10),
            limiter.admit(flooder, nowNanos: 5),
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
