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
        lastMarkMinute = try database.scalarInt("SELECT max(minute_ms) FROM reading_marks") ?? .min
    }
}
