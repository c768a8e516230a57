import Aggregation
import SQLite
import Telemetry

extension RingStore {
    /// Edge aggregation settings: windows of `windowMs` aligned to the epoch, closed
    /// `latenessMs` after their end, rolled up into hours, kept in a ring of `capacityRows`
    /// and for at most `retentionMs`.
    public struct AggregationSettings: Sendable {
        public var windowMs: Int64 = 60_000
        public var latenessMs: Int64 = 2_000
        public var capacityRows: Int64 = 1_000_000
        public var retentionMs: Int64 = 7 * 86_400_000
        public static let rollupMs: Int64 = 3_600_000

        public init() {}
    }

    struct LateKey: Hashable {
        let series: SeriesKey
        let startMs: Int64
    }

    /// Feeds one accepted reading to the open windows; a reading for a closed window is
    /// collected in `late` and merged into the stored window at the end of the transaction.
    func aggregate(
        device: Int64, signal: Int, ts: Int64, value: Double, nowMs: Int64, late: inout [LateKey: WindowStats]
    ) {
        let series = SeriesKey(device: device, signal: signal)
        if !windows.add(series, ts: ts, value: value, nowMs: nowMs) {
            late[LateKey(series: series, startMs: windows.start(of: ts)), default: WindowStats()].add(value, ts: ts)
        }
    }

    /// Inside the commit's transaction: merges late readings, persists the windows that closed,
    /// rolls them into their hours, closes due hours, and returns every row that changed and is
    /// closed (to be sent upstream).
    func persistAggregates(
        late: [LateKey: WindowStats], nowMs: Int64, ring: inout RingCursor, changed: inout [AggregateRow]
    ) throws {
        guard let settings = configuration.aggregation else { return }
        let windowS = settings.windowMs / 1000
        let hourS = AggregationSettings.rollupMs / 1000
        let hours = WindowAggregator(windowMs: AggregationSettings.rollupMs, latenessMs: settings.latenessMs)
        for (key, stats) in late {
            let row = try merge(
                key.series, windowS: windowS, startMs: key.startMs, stats: stats, closed: true, ring: &ring)
            changed.append(row)
            let hourStart = hours.start(of: key.startMs)
            let hourRow = try merge(
                key.series, windowS: hourS, startMs: hourStart, stats: stats,
                closed: hours.isClosed(start: hourStart, nowMs: nowMs), ring: &ring)
            if hourRow.revision > 0 { changed.append(hourRow) }
        }
        for window in windows.close(nowMs: nowMs) {
            let hourStart = hours.start(of: window.startMs)
            for (series, stats) in window.series.sorted(by: { $0.key < $1.key }) {
                changed.append(
                    try merge(
                        series, windowS: windowS, startMs: window.startMs, stats: stats, closed: true, ring: &ring))
                let hourRow = try merge(
                    series, windowS: hourS, startMs: hourStart, stats: stats,
                    closed: hours.isClosed(start: hourStart, nowMs: nowMs), ring: &ring)
                if hourRow.revision > 0 { changed.append(hourRow) }
            }
        }
        let closeHours = try database.statement(
            """
            UPDATE aggregates SET revision = 1 WHERE revision = 0 AND window_s = ? AND start_ms <= ?
            RETURNING device_id, signal_id, start_ms, count, sum, min, max, first_ts, last_ts, last
            """)
        closeHours.bind(arguments: hourS, nowMs - settings.latenessMs - AggregationSettings.rollupMs)
        while try closeHours.step() {
            changed.append(
                AggregateRow(
                    device: deviceName(closeHours.int64(0)), signal: signalName(Int(closeHours.int64(1))),
                    windowS: hourS,
                    startMs: closeHours.int64(2), stats: Self.stats(closeHours, from: 3), revision: 1,
                    isVehicle: isVehicle(closeHours.int64(0))))
        }
        closeHours.reset()
        changed = Self.finalStates(changed)
        let closedThrough = windows.start(of: nowMs - settings.latenessMs)
        let saveBoundary = try database.statement(
            "INSERT INTO meta(key, value) VALUES ('aggregates_closed_through_ms', ?) "
                + "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        saveBoundary.bind(arguments: String(closedThrough))
        try saveBoundary.run()
    }

    /// Merges `stats` into the stored window, or stores it in the ring's next slot. A closed
    /// window that already existed gets the next revision.
    private func merge(
        _ series: SeriesKey, windowS: Int64, startMs: Int64, stats: WindowStats, closed: Bool, ring: inout RingCursor
    ) throws -> AggregateRow {
        let update = try database.statement(
            """
            UPDATE aggregates SET count = count + ?1, sum = sum + ?2, min = min(aggregates.min, ?3),
                max = max(aggregates.max, ?4), first_ts = min(first_ts, ?5),
                last = CASE WHEN ?6 >= last_ts THEN ?7 ELSE last END, last_ts = max(last_ts, ?6),
                revision = CASE WHEN revision > 0 THEN revision + 1 WHEN ?8 THEN 1 ELSE 0 END
            WHERE device_id = ?9 AND signal_id = ?10 AND window_s = ?11 AND start_ms = ?12
            RETURNING revision, count, sum, min, max, first_ts, last_ts, last
            """)
        update.bind(
            arguments: stats.count, stats.sum, stats.min, stats.max, stats.firstTs, stats.lastTs, stats.last, closed,
            series.device, series.signal, windowS, startMs)
        var row = AggregateRow(
            device: deviceName(series.device), signal: signalName(series.signal), windowS: windowS, startMs: startMs,
            stats: stats, revision: closed ? 1 : 0, isVehicle: isVehicle(series.device))
        if try update.step() {
            row.revision = update.int64(0)
            row.stats = Self.stats(update, from: 1)
            update.reset()
            return row
        }
        update.reset()
        let insert = try database.statement(
            """
            INSERT INTO aggregates(slot, device_id, signal_id, window_s, start_ms, count, sum, min, max, first_ts,
                last_ts, last, revision)
            VALUES (?13, ?9, ?10, ?11, ?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            ON CONFLICT(slot) DO UPDATE SET device_id = excluded.device_id, signal_id = excluded.signal_id,
                window_s = excluded.window_s, start_ms = excluded.start_ms, count = excluded.count,
                sum = excluded.sum, min = excluded.min, max = excluded.max, first_ts = excluded.first_ts,
                last_ts = excluded.last_ts, last = excluded.last, revision = excluded.revision
            """)
        insert.bind(
            arguments: stats.count, stats.sum, stats.min, stats.max, stats.firstTs, stats.lastTs, stats.last,
            row.revision, series.device, series.signal, windowS, startMs, ring.advance().slot)
        try insert.run()
        return row
    }

    /// A window merged several times in one transaction (an hour receiving its minutes after
    /// a restart) is sent once, in its final state, at the place of its first change.
    static func finalStates(_ rows: [AggregateRow]) -> [AggregateRow] {
        struct Key: Hashable {
            let device: String
            let signal: String
            let windowS: Int64
            let startMs: Int64
        }
        var position: [Key: Int] = [:]
        var result: [AggregateRow] = []
        result.reserveCapacity(rows.count)
        for row in rows {
            let key = Key(device: row.device, signal: row.signal, windowS: row.windowS, startMs: row.startMs)
            if let index = position[key] {
                result[index] = row
            } else {
                position[key] = result.count
                result.append(row)
            }
        }
        return result
    }

    /// Reads count, sum, min, max, first_ts, last_ts, last from columns `first` … `first + 6`.
    static func stats(_ statement: Statement, from first: Int32) -> WindowStats {
        WindowStats(
            count: statement.int64(first), sum: statement.double(first + 1), min: statement.double(first + 2),
            max: statement.double(first + 3), firstTs: statement.int64(first + 4), lastTs: statement.int64(first + 5),
            last: statement.double(first + 6))
    }

    /// Rebuilds the open windows from the readings the ring holds: everything at or after the
    /// last boundary persisted. Run at start and after a failed commit, so the windows always
    /// agree with what the file holds.
    func rebuildWindows() throws {
        windows.reset()
        guard configuration.aggregation != nil else { return }
        let boundary =
            try database.scalarText(
                "SELECT value FROM meta WHERE key = 'aggregates_closed_through_ms'"
            ).flatMap { Int64($0) } ?? .min
        let select = try database.statement(
            "SELECT device_id, signal_id, ts_ms, value FROM readings WHERE ts_ms >= ?")
        select.bind(arguments: boundary)
        // `nowMs: .min` keeps every window open here; the next commit closes what is due.
        while try select.step() {
            windows.add(
                SeriesKey(device: select.int64(0), signal: Int(select.int64(1))), ts: select.int64(2),
                value: select.double(3), nowMs: .min)
        }
        select.reset()
        windowsNeedRebuild = false
    }

    /// Drops aggregates older than the retention period; cheap enough to run once an hour.
    func expireAggregates(nowMs: Int64) throws {
        guard let settings = configuration.aggregation else { return }
        let delete = try database.statement("DELETE FROM aggregates WHERE start_ms < ?")
        delete.bind(arguments: nowMs - settings.retentionMs)
        try delete.run()
    }

    func signalName(_ id: Int) -> String {
        Signal.catalogue.first { $0.id == id }?.name ?? "signal_\(id)"
    }

    /// True when windows are due to close or the hourly retention pass is due, so the pipeline
    /// commits even when no message arrives.
    /// Hands the open windows to readers at most every `windowsPublishIntervalMs`.
    ///
    /// Why not after every commit: readers share the aggregator's tables copy-on-write, so the
    /// next reading after a publish copies the whole current window (every series) — 3 % of all
    /// ingest instructions at 1 000 devices by callgrind, and proportional to the series count.
    /// A series request therefore sees the newest minute at most this stale; an idle gateway
    /// publishes what is pending through `aggregationDue`.
    func publishWindows(nowMs: Int64, force: Bool) {
        windowsUnpublished = true
        guard force || nowMs - windowsPublishedMs >= Self.windowsPublishIntervalMs else { return }
        openWindows.publish(from: windows, nowMs: nowMs)
        windowsPublishedMs = nowMs
        windowsUnpublished = false
    }

    static let windowsPublishIntervalMs: Int64 = 250

    public func aggregationDue(nowMs: Int64) -> Bool {
        if positionSweepDue(nowMs: nowMs) { return true }
        guard configuration.aggregation != nil else { return false }
        if windowsNeedRebuild { return true }
        if windowsUnpublished && nowMs - windowsPublishedMs >= Self.windowsPublishIntervalMs { return true }
        if let next = windows.nextCloseMs, next <= nowMs { return true }
        return nowMs >= nextRetentionMs
    }
}
