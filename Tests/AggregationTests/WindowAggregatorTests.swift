import Aggregation
import TestSupport
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

extension WindowAggregator {
    /// Closes and writes out everything due in one go, as a commit with no limit would.
    mutating func closeAll(nowMs: Int64) -> [ClosedChunk] {
        beginClosing(nowMs: nowMs)
        let chunks = takeClosing(max: .max)
        dropWritten()
        return chunks
    }
}

extension WindowAggregator.ClosedChunk {
    subscript(series: SeriesKey) -> WindowStats? { self.series.first { $0.key == series }?.stats }
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
        #expect(aggregator.closeAll(nowMs: base + 61_999).isEmpty)
        // Within the lateness allowance a reading still joins its window.
        let added4 = aggregator.add(series, ts: base + 59_500, value: 2, nowMs: base + 61_500)
        #expect(added4)
        let closed = aggregator.closeAll(nowMs: base + 62_000)
        #expect(closed.count == 1)
        #expect(closed[0].startMs == base)
        #expect(closed[0].completesWindow)
        #expect(
            closed[0][series]
                == WindowStats(count: 3, sum: 6, min: 1, max: 3, firstTs: base + 1_000, lastTs: base + 59_500, last: 2))
        // Past it the window is written: the caller must merge the reading into the stored window.
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
        let closed = aggregator.closeAll(nowMs: 1_000)
        #expect(closed.first?[series]?.sum == 3)
        #expect(closed.first?[other]?.sum == 10)
    }

    @Test func anEmptyGapOfWindowsClosesNothingExtra() {
        var aggregator = WindowAggregator(windowMs: 1_000, latenessMs: 0)
        aggregator.add(series, ts: 500, value: 1, nowMs: 500)
        aggregator.add(series, ts: 5_500, value: 1, nowMs: 5_500)
        let closed = aggregator.closeAll(nowMs: 10_000)
        #expect(closed.map { $0.startMs } == [0, 5_000])
    }

    /// A closed window is written out in series order, a chunk at a time; a late reading
    /// joins a series not yet written, is refused for one already written, and a series new
    /// to the window is written in its place in the order.
    @Test func writesAClosedWindowInChunksInSeriesOrder() {
        var aggregator = WindowAggregator(windowMs: 1_000, latenessMs: 0)
        for device in Int64(1)...10 {
            aggregator.add(SeriesKey(device: device * 2, signal: 1), ts: 10, value: 1, nowMs: 10)
        }
        aggregator.beginClosing(nowMs: 1_000)
        #expect(aggregator.closedThrough(nowMs: 1_000) == 0)
        #expect(aggregator.hasClosingWork)
        let first = aggregator.takeClosing(max: 4)
        #expect(first.count == 1)
        #expect(first[0].series.map { $0.key.device } == [2, 4, 6, 8])
        #expect(!first[0].completesWindow)
        #expect(aggregator.progress == .init(startMs: 0, writtenThrough: SeriesKey(device: 8, signal: 1)))
        // Written already: the caller merges it into the file.
        let added1 = aggregator.add(SeriesKey(device: 4, signal: 1), ts: 20, value: 5, nowMs: 1_001)
        #expect(!added1)
        let added2 = aggregator.add(SeriesKey(device: 5, signal: 1), ts: 20, value: 5, nowMs: 1_001)
        #expect(!added2)
        // Not written yet: joins the window still held here, old series or new.
        let added3 = aggregator.add(SeriesKey(device: 10, signal: 1), ts: 20, value: 5, nowMs: 1_001)
        #expect(added3)
        let added4 = aggregator.add(SeriesKey(device: 11, signal: 1), ts: 20, value: 7, nowMs: 1_001)
        #expect(added4)
        let added5 = aggregator.add(SeriesKey(device: 99, signal: 1), ts: 20, value: 9, nowMs: 1_001)
        #expect(added5)
        let second = aggregator.takeClosing(max: 3)
        #expect(second[0].series.map { $0.key.device } == [10, 11, 12])
        #expect(second[0][SeriesKey(device: 10, signal: 1)]?.count == 2)
        // Still readable (held until the commit that wrote it is done).
        #expect(aggregator.windows(of: SeriesKey(device: 2, signal: 1)).count == 1)
        let rest = aggregator.takeClosing(max: 100)
        #expect(rest[0].series.map { $0.key.device } == [14, 16, 18, 20, 99])
        #expect(rest[0].completesWindow)
        #expect(!aggregator.hasClosingWork)
        #expect(aggregator.progress == nil)
        #expect(aggregator.closedThrough(nowMs: 1_000) == 1_000)
        aggregator.dropWritten()
        #expect(aggregator.windows(of: SeriesKey(device: 2, signal: 1)).isEmpty)
        let added6 = aggregator.add(SeriesKey(device: 12, signal: 1), ts: 20, value: 5, nowMs: 1_002)
        #expect(!added6)
    }

    @Test func erasingADeviceTakesItOutOfAWindowBeingWritten() {
        var aggregator = WindowAggregator(windowMs: 1_000, latenessMs: 0)
        for device in Int64(1)...6 { aggregator.add(SeriesKey(device: device, signal: 1), ts: 10, value: 1, nowMs: 10) }
        aggregator.beginClosing(nowMs: 1_000)
        _ = aggregator.takeClosing(max: 2)
        aggregator.remove(device: 1)
        aggregator.remove(device: 4)
        let rest = aggregator.takeClosing(max: 100)
        #expect(rest.flatMap { $0.series.map { $0.key.device } } == [3, 5, 6])
    }

    /// The property the chunks exist for: whatever the chunk sizes, late readings and the
    /// point of a stop, every reading is counted exactly once — either in a written chunk, in
    /// a late merge, or (after a restart) in the windows rebuilt from the readings at or
    /// after the boundary, less the series the saved progress says are written.
    @Test(arguments: [1 as UInt64, 2, 3, 4, 5, 6, 7, 8])
    func everyReadingCountedOnceAcrossChunksLateDataAndStops(seed: UInt64) {
        var random = SplitMix(seed: seed)
        let windowMs: Int64 = 1_000
        struct Reading {
            let series: SeriesKey
            let ts: Int64
            let value: Double
        }
        var ring: [Reading] = []
        var stored: [Int64: [SeriesKey: WindowStats]] = [:]
        var committedBoundary: Int64 = .min
        var committedProgress: WindowAggregator.ClosingProgress?
        var aggregator = WindowAggregator(windowMs: windowMs, latenessMs: 100)
        var nowMs: Int64 = 0
        var restarts = 0
        for _ in 0..<400 {
            nowMs += Int64(random.next() % 120)
            // A commit: some readings (a few late), then a chunk of what closed.
            var pendingStore: [Int64: [SeriesKey: WindowStats]] = [:]
            var pendingRing: [Reading] = []
            for _ in 0..<Int(random.next() % 20) {
                let lateBy = random.next() % 8 == 0 ? Int64(random.next() % 3_000) : 0
                let reading = Reading(
                    series: SeriesKey(device: Int64(random.next() % 40), signal: Int(random.next() % 3)),
                    ts: max(0, nowMs - lateBy), value: Double(random.next() % 100))
                pendingRing.append(reading)
                if !aggregator.add(reading.series, ts: reading.ts, value: reading.value, nowMs: nowMs) {
                    pendingStore[aggregator.start(of: reading.ts), default: [:]][reading.series, default: WindowStats()]
                        .add(reading.value, ts: reading.ts)
                }
            }
            aggregator.beginClosing(nowMs: nowMs)
            for chunk in aggregator.takeClosing(max: Int(random.next() % 30) + 1) {
                for (key, stats) in chunk.series {
                    pendingStore[chunk.startMs, default: [:]][key, default: WindowStats()].merge(stats)
                }
            }
            let boundary = aggregator.closedThrough(nowMs: nowMs)
            let progress = aggregator.progress
            if random.next() % 25 == 0 {
                // kill -9 before the commit: nothing of it is kept; rebuild from the ring.
                restarts += 1
                aggregator = WindowAggregator(windowMs: windowMs, latenessMs: 100)
                aggregator.resume(from: committedProgress)
                for reading in ring where reading.ts >= committedBoundary {
                    aggregator.add(reading.series, ts: reading.ts, value: reading.value, nowMs: .min)
                }
                continue
            }
            ring.append(contentsOf: pendingRing)
            for (start, table) in pendingStore {
                for (key, stats) in table { stored[start, default: [:]][key, default: WindowStats()].merge(stats) }
            }
            committedBoundary = boundary
            if let progress {
                committedProgress = progress
            } else if boundary != committedProgress?.startMs {
                committedProgress = nil
            }
            aggregator.dropWritten()
        }
        // Drain: close everything.
        nowMs += 10 * windowMs
        aggregator.beginClosing(nowMs: nowMs)
        for chunk in aggregator.takeClosing(max: .max) {
            for (key, stats) in chunk.series {
                stored[chunk.startMs, default: [:]][key, default: WindowStats()].merge(stats)
            }
        }
        var expected: [Int64: [SeriesKey: WindowStats]] = [:]
        for reading in ring {
            expected[aggregator.start(of: reading.ts), default: [:]][reading.series, default: WindowStats()]
                .add(reading.value, ts: reading.ts)
        }
        #expect(restarts > 0 || seed > 4)
        var mismatches: [String] = []
        for start in Set(stored.keys).union(expected.keys).sorted() {
            let have = stored[start] ?? [:]
            let want = expected[start] ?? [:]
            for key in Set(have.keys).union(want.keys).sorted()
            where have[key]?.count != want[key]?.count || have[key]?.sum != want[key]?.sum {
                mismatches.append(
                    "window \(start) series \(key.rawValue): stored \(have[key]?.count ?? 0), read \(want[key]?.count ?? 0)"
                )
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) series counted wrong, first: \(mismatches.prefix(5))")
    }
}
