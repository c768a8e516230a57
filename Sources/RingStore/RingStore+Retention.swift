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

    /// Erases the positions that arrived before `nowMs - retention`, inside the commit's
    /// transaction. By arrival: the rows written before the last minute mark at or before the
    /// cutoff; and of the rows written after that mark and before the next one (the minute that
    /// straddles the cutoff, or the last minute before a long stop), those whose own time is
    /// before the cutoff. A position is so held for at most the retention plus two minutes.
    func sweepPositions(nowMs: Int64, readings: RingCursor) throws -> Int {
        guard let retention = configuration.positionRetentionMs, nowMs >= nextPositionSweepMs else { return 0 }
        let cutoff = nowMs - retention
        let from = max(positionsErasedThrough, readings.oldest)
        guard let boundary = try Self.markedRow(in: database, atOrBefore: cutoff) else { return 0 }
        let after = try database.statement(
            "SELECT seqno FROM reading_marks WHERE minute_ms > ? ORDER BY minute_ms LIMIT 1")
        after.bind(arguments: cutoff)
        let nextBoundary = try after.step() ? after.int64(0) : readings.next
        after.reset()
        let erase = try database.statement(
            """
            UPDATE readings SET device_id = 0, signal_id = 0, ts_ms = 0, value = 0, dev_seq = 0
            WHERE slot BETWEEN ? AND ? AND signal_id IN (\(Self.positionSignalList)) AND ts_ms < ?
            """)
        var erased = 0
        // Everything before the boundary, whatever its time; around the cutoff, by its time.
        for (start, end, before) in [(from, boundary, Int64.max), (max(from, boundary), nextBoundary, cutoff)]
        where end > start {
            for (low, high) in readings.slotRanges(from: start, to: end) {
                erase.bind(arguments: low, high, before)
                try erase.run()
                erased += Int(database.changes)
            }
        }
        if boundary > positionsErasedThrough {
            positionsErasedThrough = boundary
            let save = try database.statement(
                "INSERT INTO meta(key, value) VALUES ('positions_erased_through', ?) "
                    + "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            save.bind(arguments: String(boundary))
            try save.run()
        }
        return erased
    }

    /// After the sweep committed: the newest position of each vehicle goes too once it is older
    /// than the cutoff (the API's latest values and map), and the log is truncated.
    /// Returns the cutoff when a sweep ran.
    func afterPositionSweep(nowMs: Int64, erased: Int) -> Int64? {
        guard let retention = configuration.positionRetentionMs, nowMs >= nextPositionSweepMs else { return nil }
        nextPositionSweepMs = nowMs + 60_000
        let cutoff = nowMs - retention
        var changed: [(id: Int64, latest: [LatestValues.Value?])] = []
        for (device, var state) in devices where device.kind == .vehicle {
            var touched = false
            for signal in Self.positionSignals where signal.slot < state.latest.count {
                if let value = state.latest[signal.slot], value.tsMs < cutoff {
                    state.latest[signal.slot] = nil
                    touched = true
                }
            }
            if touched {
                devices[device] = state
                changed.append((state.id, state.latest))
            }
        }
        latest.replace(changed)
        if erased > 0 { _ = try? database.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
        return cutoff
    }
}
