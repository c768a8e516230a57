import Aggregation
import SQLite

/// What the REST API needs from the writer: minute marks into the reading ring, and the
/// newest value of each series.
extension RingStore {
    /// Records the first row number of a wall-clock minute and forgets marks that point
    /// before the ring's oldest row (all but the newest of those, which still bounds a scan).
    func mark(minute: Int64, readings: RingCursor) throws {
        let insert = try database.statement("INSERT OR IGNORE INTO reading_marks(minute_ms, seqno) VALUES (?, ?)")
        insert.bind(1, minute)
        insert.bind(2, readings.next)
        try insert.run()
        let prune = try database.statement(
            """
            DELETE FROM reading_marks
            WHERE minute_ms < (SELECT max(minute_ms) FROM reading_marks WHERE seqno <= ?)
            """)
        prune.bind(1, readings.oldest)
        try prune.run()
    }

    /// Shows the API the open windows of the series this commit touched (all of them after
    /// the windows were rebuilt), and now and then forgets long-silent series.
    func publishOpenWindows(_ touched: some Sequence<SeriesKey>, nowMs: Int64) {
        guard configuration.aggregation != nil else { return }
        var updates: [SeriesKey: [OpenWindows.Window]] = [:]
        for key in touched {
            updates[key] = windows.openWindows(of: key).map { OpenWindows.Window(startMs: $0.startMs, stats: $0.stats) }
        }
        openWindows.publish(updates, nowMs: nowMs)
        if nowMs >= nextOpenWindowPruneMs {
            openWindows.prune(nowMs: nowMs)
            nextOpenWindowPruneMs = nowMs + 60_000
        }
    }

    /// One pass over the ring at start-up (about 0.3 s per million readings).
    func loadLatest() throws {
        var values: [SeriesKey: LatestValues.Value] = [:]
        let select = try database.statement("SELECT device_id, signal_id, ts_ms, value FROM readings")
        while try select.step() {
            let key = SeriesKey(device: select.int64(0), signal: Int(select.int64(1)))
            let ts = select.int64(2)
            if ts >= values[key]?.tsMs ?? .min { values[key] = LatestValues.Value(tsMs: ts, value: select.double(3)) }
        }
        select.reset()
        latest.merge(values)
        if configuration.aggregation != nil {
            var updates: [SeriesKey: [OpenWindows.Window]] = [:]
            for key in windows.openSeries {
                updates[key] = windows.openWindows(of: key).map { OpenWindows.Window(startMs: $0.startMs, stats: $0.stats) }
            }
            openWindows.publish(updates, nowMs: .min / 2)
        }
        lastMarkMinute = try database.scalarInt("SELECT max(minute_ms) FROM reading_marks") ?? .min
    }
}
