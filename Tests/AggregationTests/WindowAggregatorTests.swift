import Aggregation
import Testing

@Suite struct WindowStatsTests {
    @Test func accumulatesAndMergesExactly() {
        var a = WindowStats()
        for (ts, value) in [(10, 3.0), (5, 1.0), (20, 2.0)] { a.add(value, ts: Int64(ts)) }
        #expect(a.count == 3)
        #expect(a.sum == 6)
        #expect(a.min == 1)
        #expect(a.max == 3)
        #expect(a.firstTs == 5)
        #expect(a.lastTs == 20)
        #expect(a.last == 2)
        #expect(a.mean == 2)
        var b = WindowStats(value: 9, ts: 15)
        b.merge(a)
        #expect(b == WindowStats(count: 4, sum: 15, min: 1, max: 9, firstTs: 5, lastTs: 20, last: 2))
        var c = WindowStats(value: -1, ts: 30)
        c.merge(a)
        #expect(c.last == -1)
        #expect(c.lastTs == 30)
    }
}

@Suite struct WindowAggregatorTests {
    let series = SeriesKey(device: 7, signal: 30)

    @Test func alignsWindowsToTheEpoch() {
        let aggregator = WindowAggregator(windowMs: 60_000, latenessMs: 2_000)
        #expect(aggregator.start(of: 1_767_225_659_999) == 1_767_225_600_000)
        #expect(aggregator.start(of: 1_767_225_660_000) == 1_767_225_660_000)
        #expect(aggregator.start(of: -1) == -60_000)
        #expect(SeriesKey(device: 123_456, signal: 30).device == 123_456)
        #expect(SeriesKey(device: 123_456, signal: 30).signal == 30)
    }

    @Test func closesAtEndPlusLateness() {
        var aggregator = WindowAggregator(windowMs: 60_000, latenessMs: 2_000)
        let base: Int64 = 1_767_225_600_000
        let added1 = aggregator.add(series, ts: base + 1_000, value: 1, nowMs: base + 1_000)
        #expect(added1)
        let added2 = aggregator.add(series, ts: base + 59_000, value: 3, nowMs: base + 59_000)
        #expect(added2)
        let added3 = aggregator.add(series, ts: base + 60_500, value: 5, nowMs: base + 60_500)
        #expect(added3)
        #expect(aggregator.nextCloseMs == base + 62_000)
        #expect(aggregator.close(nowMs: base + 61_999).isEmpty)
        // Within the lateness allowance a reading still joins its window.
        let added4 = aggregator.add(series, ts: base + 59_500, value: 2, nowMs: base + 61_500)
        #expect(added4)
        let closed = aggregator.close(nowMs: base + 62_000)
        #expect(closed.count == 1)
        #expect(closed[0].startMs == base)
        #expect(
            closed[0].series[series]
                == WindowStats(count: 3, sum: 6, min: 1, max: 3, firstTs: base + 1_000, lastTs: base + 59_500, last: 2))
        // Past it the window is closed: the caller must merge the reading into the stored window.
        let late = aggregator.add(series, ts: base + 30_000, value: 9, nowMs: base + 62_001)
        #expect(!late)
        #expect(aggregator.openCount == 1)
    }

    @Test func keepsSeriesApart() {
        var aggregator = WindowAggregator(windowMs: 1_000, latenessMs: 0)
        let other = SeriesKey(device: 8, signal: 30)
        aggregator.add(series, ts: 100, value: 1, nowMs: 100)
        aggregator.add(other, ts: 200, value: 10, nowMs: 200)
        aggregator.add(series, ts: 300, value: 2, nowMs: 300)
        let closed = aggregator.close(nowMs: 1_000)
        #expect(closed.first?.series[series]?.sum == 3)
        #expect(closed.first?.series[other]?.sum == 10)
    }

    @Test func anEmptyGapOfWindowsClosesNothingExtra() {
        var aggregator = WindowAggregator(windowMs: 1_000, latenessMs: 0)
        aggregator.add(series, ts: 500, value: 1, nowMs: 500)
        aggregator.add(series, ts: 5_500, value: 1, nowMs: 5_500)
        let closed = aggregator.close(nowMs: 10_000)
        #expect(closed.map(\.startMs) == [0, 5_000])
    }
}
