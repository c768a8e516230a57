import SQLite
public import Telemetry

/// Retention of vehicle positions, independent of the ring's capacity: a position is personal
/// data and is kept only as long as `Configuration.positionRetentionMs` says, even when the ring
/// has room for months.
///
/// Erased rows keep their slot (the ring's arithmetic stays as it was) but lose everything they
/// said: device, signal, time and value become 0, so no view shows them and the next write to
/// the slot overwrites the row as usual. The connection runs with `secure_delete`, and the
/// sweep ends with a checkpoint that truncates the write-ahead log, so the old bytes do not
/// linger in free space or in the WAL.
extension RingStore {
    /// What a GPS message stores: the raw rows that retention erases.
    public static let positionSignals: [Signal] = [.latitude, .longitude, .gpsSpeed, .heading]
    static let positionSignalList = positionSignals.map { String($0.id) }.joined(separator: ", ")

    /// True when the minute's sweep is due (the pipeline then commits even without traffic).
    func positionSweepDue(nowMs: Int64) -> Bool {
        configuration.positionRetentionMs != nil && nowMs >= nextPositionSweepMs
    }

    /// Rows a sweep covers per commit: a minute of positions from a thousand vehicles is
    /// ~180 000 rows, and erasing them in one commit held ingest up for ~70 ms once a minute.
    static let sweepSliceRows: Int64 = 16_384

    /// Erases the positions that arrived before `nowMs - retention`, inside the commit's
    /// transaction, a slice per commit. By arrival: the rows written before the last minute mark
    /// at or before the cutoff. After a stop (the next mark more than two minutes later), also
    /// those rows after that mark whose own time is before the cutoff: the last minute before the
    /// stop would otherwise wait for a mark the stop never wrote. A position is so held for at
    /// most the retention plus two minutes, and a little more while a slice catches up.
    func sweepPositions(nowMs: Int64, readings: RingCursor) throws -> Int {
        guard let retention = configuration.positionRetentionMs, nowMs >= nextPositionSweepMs else { return 0 }
        sweepBehind = false
        let cutoff = nowMs - retention
        let mark = try database.statement(
            "SELECT minute_ms, seqno FROM reading_marks WHERE minute_ms <= ? ORDER BY minute_ms DESC LIMIT 1")
        mark.bind(arguments: cutoff)
        guard try mark.step() else {
            mark.reset()
            return 0
        }
        let (boundaryMinute, boundary) = (mark.int64(0), mark.int64(1))
        mark.reset()
        let blank = try database.statement(
            """
            UPDATE readings SET device_id = 0, signal_id = 0, ts_ms = 0, value = 0, dev_seq = 0
            WHERE slot BETWEEN ? AND ? AND signal_id IN (\(Self.positionSignalList)) AND ts_ms < ?
            """)
        var erased = 0
        func erase(_ start: Int64, _ end: Int64, before: Int64) throws {
            for (low, high) in readings.slotRanges(from: start, to: end) {
                blank.bind(arguments: low, high, before)
                try blank.run()
                erased += Int(database.changes)
            }
        }
        let from = max(positionsErasedThrough, readings.oldest)
        if from < boundary {
            let end = min(boundary, from + Self.sweepSliceRows)
            try erase(from, end, before: Int64.max)
            positionsErasedThrough = end
            let save = try database.statement(
                "INSERT INTO meta(key, value) VALUES ('positions_erased_through', ?) "
                    + "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            save.bind(arguments: String(end))
            try save.run()
            sweepBehind = end < boundary
            if sweepBehind { return erased }
        }
        let after = try database.statement(
            "SELECT minute_ms, seqno FROM reading_marks WHERE minute_ms > ? ORDER BY minute_ms LIMIT 1")
        after.bind(arguments: cutoff)
        let (nextMinute, nextBoundary) = try after.step() ? (after.int64(0), after.int64(1)) : (nowMs, readings.next)
        after.reset()
        if nextMinute - boundaryMinute > 120_000 {
            let start = max(from, boundary, straddleFrom)
            let end = min(nextBoundary, start + Self.sweepSliceRows)
            try erase(start, end, before: cutoff)
            sweepBehind = end < nextBoundary
            straddleFrom = sweepBehind ? end : 0
        }
        return erased
    }

    /// After the sweep committed: the newest position of each vehicle goes too once it is older
    /// than the cutoff (the API's latest values and map), and the log is truncated.
    /// Returns the cutoff when a sweep ran.
    func afterPositionSweep(nowMs: Int64, erased: Int) -> Int64? {
        guard let retention = configuration.positionRetentionMs, nowMs >= nextPositionSweepMs else { return nil }
        // A sweep that is behind goes on at the next commit, which the pipeline then makes at once.
        guard !sweepBehind else { return nil }
        nextPositionSweepMs = nowMs + 60_000
        let cutoff = nowMs - retention
        latest.erase(slots: Self.positionSignals.map(\.slot), olderThan: cutoff)
        if erased > 0 { _ = try? database.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        return cutoff
    }
}
