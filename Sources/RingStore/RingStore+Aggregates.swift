import Aggregation
import SQLite
import Telemetry

extension RingStore {
    /// Edge aggregation settings: windows of `windowMs` aligned to the epoch, closed
    /// `latenessMs` after their end, rolled up into hours, kept in a ring of `capacityRows`
    /// and for at most `retentionMs`: the file's `aggregation` section, read straight into this
    /// type (`AggregationSettings.section`).
    public struct AggregationSettings: Sendable {
        public var enabled = true
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

    /// An aggregated reading of the commit in progress.
    struct PendingReading {
        let series: SeriesKey
        let ts: Int64
        let value: Double
    }

    /// The least number of series written per commit while a window is being written out:
    /// a few thousand devices' window closes in one commit, as before.
    static let closingChunkMin = 512

    /// Adds the commit's readings to the shared windows under one lock; returns those whose
    /// window (or series of it) is already stored, to be merged into the file.
    func aggregatePending(nowMs: Int64) -> [LateKey: WindowStats] {
        var late: [LateKey: WindowStats] = [:]
        guard !pendingAggregation.isEmpty else { return late }
        openWindows.withAggregator { windows in
            for reading in pendingAggregation
            where !windows.add(reading.series, ts: reading.ts, value: reading.value, nowMs: nowMs) {
                late[LateKey(series: reading.series, startMs: windows.start(of: reading.ts)), default: WindowStats()]
                    .add(reading.value, ts: reading.ts)
            }
        }
        pendingAggregation.removeAll(keepingCapacity: true)
        return late
    }

    /// How many series (and separately, hours) this commit writes of what has closed.
    ///
    /// A window's series are spread over a quarter of the window after it closes, paced by
    /// the time since the last chunk: at 10 000 devices (160 000 series, 60 s windows) and a
    /// 50 ms flush, about 530 series per commit instead of all of them in one commit that
    /// held ingest for 2–3 s. The pause since the last chunk counts up to 250 ms (an idle
    /// gateway commits every 200 ms; the first chunk of a window follows a long pause).
    /// Never fewer than `closingChunkMin`, so small gateways close a window in one commit as
    /// before.
    func closingChunk(nowMs: Int64, seriesPerWindow: Int, windowMs: Int64) -> Int {
        let elapsed = min(max(nowMs - lastClosingWorkMs, 1), 250)
        let spreadMs = max(windowMs / 4, 1)
        let paced = (Double(seriesPerWindow) * Double(elapsed) / Double(spreadMs)).rounded(.up)
        return max(Self.closingChunkMin, Int(paced))
    }

    /// Inside the commit's transaction: merges late readings, writes a chunk of the windows
    /// that closed and rolls it into its hours, closes a chunk of the hours whose minutes are
    /// all written, and returns every row that changed and is closed (to be sent upstream).
    func persistAggregates(
        late: [LateKey: WindowStats], nowMs: Int64, ring: inout RingCursor, changed: inout [AggregateRow]
    ) throws {
        let settings = configuration.aggregation
        guard settings.enabled else { return }
        let windowS = settings.windowMs / 1000
        let hourS = AggregationSettings.rollupMs / 1000
        let hours = WindowAggregator(windowMs: AggregationSettings.rollupMs, latenessMs: settings.latenessMs)
        // One pace for this commit's minutes and hours alike.
        let (writtenBefore, chunks, limit) = openWindows.withAggregator { windows in
            windows.beginClosing(nowMs: nowMs)
            let before = windows.closedThrough(nowMs: nowMs)
            let limit = closingChunk(
                nowMs: nowMs, seriesPerWindow: windows.seriesPerWindow, windowMs: settings.windowMs)
            guard windows.hasClosingWork else { return (before, [WindowAggregator.ClosedChunk](), limit) }
            return (before, windows.takeClosing(max: limit), limit)
        }
        // An hour is closed once all its minutes are written; until then its row stays open
        // (revision 0) and late minutes merge into it without a revision of their own.
        func hourClosed(_ hourStart: Int64) -> Bool { hourStart + AggregationSettings.rollupMs <= writtenBefore }
        for (key, stats) in late {
            let row = try merge(
                key.series, windowS: windowS, startMs: key.startMs, stats: stats, closed: true, ring: &ring)
            changed.append(row)
            let hourStart = hours.start(of: key.startMs)
            let hourRow = try merge(
                key.series, windowS: hourS, startMs: hourStart, stats: stats, closed: hourClosed(hourStart),
                ring: &ring)
            if hourRow.revision > 0 { changed.append(hourRow) }
        }
        var written = 0
        for chunk in chunks {
            let hourStart = hours.start(of: chunk.startMs)
            for (series, stats) in chunk.series {
                changed.append(
                    try merge(series, windowS: windowS, startMs: chunk.startMs, stats: stats, closed: true, ring: &ring)
                )
                _ = try merge(series, windowS: hourS, startMs: hourStart, stats: stats, closed: false, ring: &ring)
            }
            written += chunk.series.count
        }
        let (writtenThrough, progress) = openWindows.withAggregator { ($0.closedThrough(nowMs: nowMs), $0.progress) }
        if written > 0 || hourClosesPending || writtenThrough != hoursCheckedThroughMs {
            lastClosingWorkMs = nowMs
            hoursCheckedThroughMs = writtenThrough
            let closeHours = try database.statement(
                """
                UPDATE aggregates SET revision = 1 WHERE slot IN (
                    SELECT slot FROM aggregates WHERE revision = 0 AND start_ms <= ? AND window_s = ? LIMIT ?)
                RETURNING device_id, signal_id, start_ms, count, sum, min, max, first_ts, last_ts, last
                """)
            closeHours.bind(arguments: writtenThrough - AggregationSettings.rollupMs, hourS, limit)
            var closed = 0
            while try closeHours.step() {
                changed.append(
                    AggregateRow(
                        device: deviceName(closeHours.int64(0)), signal: signalName(Int(closeHours.int64(1))),
                        windowS: hourS,
                        startMs: closeHours.int64(2), stats: Self.stats(closeHours, from: 3), revision: 1,
                        isVehicle: isVehicle(closeHours.int64(0))))
                closed += 1
            }
            closeHours.reset()
            hourClosesPending = closed >= limit
        }
        changed = Self.finalStates(changed)
        let saveBoundary = try database.statement(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
        saveBoundary.bind(arguments: "aggregates_closed_through_ms", String(writtenThrough))
        try saveBoundary.run()
        if let progress {
            saveBoundary.bind(
                arguments: "aggregates_closing", "\(progress.startMs) \(progress.writtenThrough.rawValue)")
            try saveBoundary.run()
        } else if written > 0 {
            try database.execute("DELETE FROM meta WHERE key = 'aggregates_closing'")
        }
    }

    /// Merges `stats` into the stored window, or stores it in the ring's next slot. A closed
    /// window that already existed gets the next revision.
    private func merge(
        _ series: SeriesKey, windowS: Int64, startMs: Int64, stats: WindowStats, closed: Bool, ring: inout RingCursor
    ) throws -> AggregateRow {
        // Found by its key and merged here, then written back by slot. An `UPDATE … RETURNING`
        // did it in one statement, but RETURNING opens a temporary B-tree for its rows every
        // time it runs: about 40 000 instructions a merge under callgrind, and every closed
        // series costs two merges (its minute and its hour), so at 100 000 devices a window
        // close outran two cores and ingest fell seconds behind.
        // Literal statements, cached by address: the cache keyed by text hashed it on every
        // lookup, 2 100 instructions a merge. A cached statement is reset when it is handed out.
        let find = try database.statement(
            static: """
                SELECT slot, revision, count, sum, min, max, first_ts, last_ts, last FROM aggregates
                WHERE device_id = ? AND signal_id = ? AND window_s = ? AND start_ms = ?
                """)
        find.bindInt64(series.device, at: 1)
        find.bindInt64(Int64(series.signal), at: 2)
        find.bindInt64(windowS, at: 3)
        find.bindInt64(startMs, at: 4)
        var row = AggregateRow(
            device: deviceName(series.device), signal: signalName(series.signal), windowS: windowS, startMs: startMs,
            stats: stats, revision: closed ? 1 : 0, isVehicle: isVehicle(series.device))
        if try find.step() {
            let slot = find.int64(0)
            let revision = find.int64(1)
            var merged = Self.stats(find, from: 2)
            find.reset()
            merged.merge(stats)
            row.revision = revision > 0 ? revision + 1 : (closed ? 1 : 0)
            row.stats = merged
            let update = try database.statement(
                static: """
                    UPDATE aggregates SET count = ?, sum = ?, min = ?, max = ?, first_ts = ?, last_ts = ?, last = ?,
                        revision = ? WHERE slot = ?
                    """)
            update.bind(
                arguments: merged.count, merged.sum, merged.min, merged.max, merged.firstTs, merged.lastTs, merged.last,
                row.revision, slot)
            try update.run()
            return row
        }
        find.reset()
        let insert = try database.statement(
            static: """
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
    /// last boundary persisted, less the series of a window that a stop interrupted halfway
    /// and that are already written. Run at start and after a failed commit, so the windows
    /// always agree with what the file holds.
    func rebuildWindows() throws {
        let settings = configuration.aggregation
        guard settings.enabled else {
            openWindows.withAggregator { $0.reset() }
            return
        }
        let boundary =
            try database.scalarText(
                "SELECT value FROM meta WHERE key = 'aggregates_closed_through_ms'"
            ).flatMap { Int64($0) } ?? .min
        let progress = try database.scalarText("SELECT value FROM meta WHERE key = 'aggregates_closing'").flatMap {
            text -> WindowAggregator.ClosingProgress? in
            let parts = text.split(separator: " ")
            guard parts.count == 2, let start = Int64(parts[0]), let written = Int64(parts[1]) else { return nil }
            return WindowAggregator.ClosingProgress(startMs: start, writtenThrough: SeriesKey(rawValue: written))
        }
        var windows = WindowAggregator(windowMs: settings.windowMs, latenessMs: settings.latenessMs)
        windows.resume(from: progress)
        let select = try database.statement(
            "SELECT device_id, signal_id, ts_ms, value FROM readings WHERE ts_ms >= ?")
        select.bind(arguments: boundary)
        // `nowMs: .min` keeps every window open here; the next commit closes what is due. A
        // series already written of the interrupted window is refused by `add` (resume).
        while try select.step() {
            windows.add(
                SeriesKey(device: select.int64(0), signal: Int(select.int64(1))), ts: select.int64(2),
                value: select.double(3), nowMs: .min)
        }
        select.reset()
        openWindows.withAggregator { $0 = windows }
        // What the hours were last closed up to is known again only after the next commit.
        hoursCheckedThroughMs = .min
        windowsNeedRebuild = false
    }

    /// Drops aggregates older than the retention period; cheap enough to run once an hour.
    func expireAggregates(nowMs: Int64) throws {
        let settings = configuration.aggregation
        guard settings.enabled else { return }
        let delete = try database.statement("DELETE FROM aggregates WHERE start_ms < ?")
        delete.bind(arguments: nowMs - settings.retentionMs)
        try delete.run()
    }

    func signalName(_ id: Int) -> String {
        Signal.catalogue.first { $0.id == id }?.name ?? "signal_\(id)"
    }

    /// True when windows are due to close, a closed window or hour still has chunks to write,
    /// or the hourly retention pass is due, so the pipeline commits even when no message
    /// arrives.
    public func aggregationDue(nowMs: Int64) -> Bool {
        if positionSweepDue(nowMs: nowMs) { return true }
        guard configuration.aggregation.enabled else { return false }
        if windowsNeedRebuild { return true }
        let (nextClose, closingWork) = openWindows.withAggregator { ($0.nextCloseMs, $0.hasClosingWork) }
        if (closingWork || hourClosesPending) && nowMs - lastClosingWorkMs >= 20 { return true }
        if let nextClose, nextClose <= nowMs { return true }
        return nowMs >= nextRetentionMs
    }
}
