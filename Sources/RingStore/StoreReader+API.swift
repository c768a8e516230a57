public import Advisories
import Geo
import SQLite
public import Telemetry

/// The queries behind the REST API. Each one is bounded by an index (no full scans of the
/// reading ring), so a dashboard's request costs about the same on a full store as on an
/// empty one.
extension StoreReader {
    /// The ring and outbox numbers `/v1/health` and `/metrics` need, from a handful of rows.
    public struct Fill: Sendable, Equatable {
        public var readings: Int64 = 0
        public var capacityReadings: Int64 = 0
        public var readingsWritten: Int64 = 0
        public var readingsEvicted: Int64 = 0
        /// Deleted, oldest first, to make room on a full disk (apart from `readingsEvicted`).
        public var readingsDroppedForSpace: Int64 = 0
        public var aggregates: Int64 = 0
        public var capacityAggregates: Int64 = 0
        public var fileBytes: Int64 = 0
        public var walBytes: Int64 = 0
        public var outboxMessages: Int64 = 0
        public var outboxOldestMs: Int64?
        public var alertsActive: Int64 = 0
        public var devices: Int64 = 0
        /// The device time of the oldest vehicle position held (nil: none).
        public var positionsOldestMs: Int64?

        public init() {}
    }

    public func fill() throws(StoreError) -> Fill {
        var fill = Fill()
        var readingsRing = RingCursor(capacity: 1)
        try rows("SELECT name, capacity, next_seqno, floor_seqno, dropped_for_space FROM rings") {
            let capacity = $0.int64(1)
            let next = $0.int64(2)
            let floor = $0.int64(3)
            let count = max(0, min(capacity, next - floor))
            switch $0.text(0) {
            case "readings":
                let ring = RingCursor(
                    capacity: max(1, capacity), next: next, floor: floor, droppedForSpace: $0.int64(4))
                fill.readings = count
                fill.capacityReadings = capacity
                fill.readingsWritten = next
                fill.readingsEvicted = ring.evicted
                fill.readingsDroppedForSpace = ring.droppedForSpace
                readingsRing = ring
            case "aggregates":
                fill.aggregates = count
                fill.capacityAggregates = capacity
            default: break
            }
        }
        try rows("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()") {
            fill.fileBytes = $0.int64(0)
        }
        try rows("SELECT count(*) FROM outbox") { fill.outboxMessages = $0.int64(0) }
        try rows("SELECT created_ms FROM outbox ORDER BY id LIMIT 1") { fill.outboxOldestMs = $0.int64(0) }
        try rows("SELECT count(*) FROM alerts_active") { fill.alertsActive = $0.int64(0) }
        try rows("SELECT max(id) FROM devices") { fill.devices = $0.int64(0) }
        // Only the rows written since the retention sweep's mark can hold a position.
        var erasedThrough: Int64 = 0
        try rows("SELECT value FROM meta WHERE key = 'positions_erased_through'") {
            erasedThrough = Int64($0.text(0) ?? "") ?? 0
        }
        do {
            let oldest = try database.statement(
                "SELECT min(ts_ms) FROM readings WHERE slot BETWEEN ? AND ? AND signal_id IN (\(RingStore.positionSignalList))"
            )
            for (low, high) in readingsRing.slotRanges(from: erasedThrough) {
                oldest.bind(arguments: low, high)
                if try oldest.step(), !oldest.isNull(0) {
                    fill.positionsOldestMs = min(fill.positionsOldestMs ?? .max, oldest.int64(0))
                }
                oldest.reset()
            }
        } catch {
            throw .sqlite(error, doing: "finding the oldest position in \(path)")
        }
        return fill
    }

    public struct Device: Sendable, Equatable {
        public var rowID: Int64
        public var name: String
        public var kind: DeviceKind
        public var firstSeenMs: Int64
        public var lastSeenMs: Int64
        public var firmware: String?
        public var hardware: String?
        public var model: String?
        public var seqGaps: Int64
        public var duplicates: Int64
        public var seqResets: Int64
        public var readings: Int64
    }

    static let deviceColumns =
        "id, name, kind, first_seen_ms, last_seen_ms, fw, hw, model, seq_gaps, duplicates, seq_resets, readings"

    static func device(_ row: Statement) -> Device {
        Device(
            rowID: row.int64(0), name: row.text(1) ?? "", kind: DeviceKind(rawValue: Int(row.int64(2))) ?? .vehicle,
            firstSeenMs: row.int64(3), lastSeenMs: row.int64(4), firmware: row.text(5), hardware: row.text(6),
            model: row.text(7), seqGaps: row.int64(8), duplicates: row.int64(9), seqResets: row.int64(10),
            readings: row.int64(11))
    }

    /// One page of devices in (kind, name) order, starting after `after`: a keyset cursor,
    /// so page 500 costs what page 1 does and a device added meanwhile is never skipped twice.
    public func devices(kind: DeviceKind?, after: (kind: DeviceKind, name: String)?, limit: Int) throws(StoreError)
        -> [Device]
    {
        var result: [Device] = []
        let sql =
            "SELECT \(Self.deviceColumns) FROM devices WHERE (?1 IS NULL OR kind = ?1) AND (kind, name) > (?2, ?3) "
            + "ORDER BY kind, name LIMIT ?4"
        do {
            let statement = try database.statement(sql)
            defer { statement.reset() }
            statement.bind(arguments: kind?.rawValue, after?.kind.rawValue ?? 0, after?.name ?? "", max(1, limit))
            while try statement.step() { result.append(Self.device(statement)) }
        } catch {
            throw .sqlite(error, doing: "listing devices in \(path)")
        }
        return result
    }

    /// Every device with this name (one per kind at most).
    public func devices(named name: String) throws(StoreError) -> [Device] {
        var result: [Device] = []
        do {
            let statement = try database.statement(
                // `kind IN (...)` lets SQLite probe the (kind, name) index once per kind instead of
                // scanning every device for the name.
                "SELECT \(Self.deviceColumns) FROM devices WHERE kind IN (1, 2) AND name = ?1 ORDER BY kind")
            defer { statement.reset() }
            statement.bind(arguments: name)
            while try statement.step() { result.append(Self.device(statement)) }
        } catch {
            throw .sqlite(error, doing: "looking up device \(name) in \(path)")
        }
        return result
    }

    /// One bucket of a series: readings with `timeMs <= ts < timeMs + step`.
    public struct Bucket: Sendable, Equatable {
        public var timeMs: Int64
        public var count: Int64
        public var min: Double
        public var max: Double
        public var sum: Double

        public var mean: Double { sum / Double(count) }

        mutating func merge(_ other: Bucket) {
            count += other.count
            min = Swift.min(min, other.min)
            max = Swift.max(max, other.max)
            sum += other.sum
        }
    }

    public enum SeriesSource: String, Sendable {
        case raw
        case aggregates
    }

    /// The stored window that serves a step exactly: the largest one dividing it.
    public static func aggregateWindow(forStepMs step: Int64, windowMs: Int64?) -> Int64? {
        if step % RingStore.AggregationSettings.rollupMs == 0 { return RingStore.AggregationSettings.rollupMs }
        if let windowMs, windowMs > 0, step % windowMs == 0 { return windowMs }
        return nil
    }

    /// Buckets of `step` (aligned to multiples of it since the epoch) over `[fromMs, toMs)`.
    ///
    /// When a stored aggregate window divides the step, closed windows answer for the past
    /// (hours, then minutes after the last closed hour) and `openWindows` for the minutes not
    /// yet stored: exact, and a day at step 60 s reads 1 440 aggregate rows instead of 86 400
    /// readings. Aggregates also outlive the reading ring, so this path still answers after
    /// the raw readings were overwritten. Other steps, or no `openWindows` (a reader outside
    /// gatewayd), read raw readings from the ring.
    public func series(
        deviceRowID: Int64, signalID: Int, fromMs: Int64, toMs: Int64, stepMs: Int64, windowMs: Int64?,
        openWindows: OpenWindows? = nil
    ) throws(StoreError) -> (buckets: [Bucket], source: SeriesSource) {
        var buckets: [Bucket] = []
        var rawFrom = fromMs
        // The writer's windows before the file: a window leaves memory only after the commit
        // that stored it, so one read now and the file read after find it in one place or both
        // (then the file's copy wins), never in neither.
        let held = openWindows?.windows(deviceRowID: deviceRowID, signalID: signalID)
        do {
            // One read transaction: the ring position, the marks and the rows agree.
            try database.execute("BEGIN")
            defer { try? database.execute("COMMIT") }
            guard let window = Self.aggregateWindow(forStepMs: stepMs, windowMs: windowMs) else {
                return (try rawBuckets(deviceRowID, signalID, fromMs: fromMs, toMs: toMs, stepMs: stepMs), .raw)
            }
            rawFrom = try closedBuckets(
                deviceRowID, signalID, windowMs: window, fromMs: fromMs, toMs: toMs, stepMs: stepMs, into: &buckets)
            if window != windowMs, let windowMs {
                rawFrom = try closedBuckets(
                    deviceRowID, signalID, windowMs: windowMs, fromMs: rawFrom, toMs: toMs, stepMs: stepMs,
                    into: &buckets)
            }
            guard rawFrom < toMs else { return (buckets, .aggregates) }
            if let held {
                var open: [Bucket] = []
                for window in held
                where window.startMs >= rawFrom && window.startMs < toMs && window.stats.count > 0 {
                    let bucket = Bucket(
                        timeMs: window.startMs - window.startMs % stepMs, count: window.stats.count,
                        min: window.stats.min, max: window.stats.max, sum: window.stats.sum)
                    open.appendMerging(bucket)
                }
                return (Self.merged(buckets, open), .aggregates)
            }
            let raw = try rawBuckets(deviceRowID, signalID, fromMs: rawFrom, toMs: toMs, stepMs: stepMs)
            return (Self.merged(buckets, raw), .aggregates)
        } catch {
            throw .sqlite(error, doing: "reading a series from \(path)")
        }
    }

    /// Appends the stored windows of one size as step buckets (rows arrive in start order from
    /// the unique index, so no GROUP BY sort); returns where the stored windows end.
    func closedBuckets(
        _ device: Int64, _ signal: Int, windowMs: Int64, fromMs: Int64, toMs: Int64, stepMs: Int64,
        into buckets: inout [Bucket]
    ) throws(SQLiteError) -> Int64 {
        let statement = try database.statement(
            """
            SELECT start_ms, count, min, max, sum FROM aggregates
            WHERE device_id = ?1 AND signal_id = ?2 AND window_s = ?3 AND start_ms >= ?4 AND start_ms < ?5
              AND revision > 0
            ORDER BY start_ms
            """)
        defer { statement.reset() }
        statement.bind(arguments: device, signal, windowMs / 1000, fromMs, toMs)
        var end = fromMs
        while try statement.step() {
            let start = statement.int64(0)
            let bucket = Bucket(
                timeMs: start - start % stepMs, count: statement.int64(1), min: statement.double(2),
                max: statement.double(3), sum: statement.double(4))
            buckets.appendMerging(bucket)
            end = max(end, start + windowMs)
        }
        return end
    }

    /// Buckets from the reading ring, scanning only the slots written since `fromMs`.
    func rawBuckets(_ device: Int64, _ signal: Int, fromMs: Int64, toMs: Int64, stepMs: Int64) throws(SQLiteError)
        -> [Bucket]
    {
        var buckets: [Bucket] = []
        for (low, high) in try slotRanges(forReadingsSince: fromMs) {
            let statement = try database.statement(
                """
                SELECT (ts_ms / ?1) * ?1 AS t, count(*), min(value), max(value), sum(value)
                FROM readings
                WHERE slot BETWEEN ?2 AND ?3 AND device_id = ?4 AND signal_id = ?5 AND ts_ms >= ?6 AND ts_ms < ?7
                GROUP BY t ORDER BY t
                """)
            defer { statement.reset() }
            statement.bind(arguments: stepMs, low, high, device, signal, fromMs, toMs)
            var part: [Bucket] = []
            while try statement.step() {
                part.append(
                    Bucket(
                        timeMs: statement.int64(0), count: statement.int64(1), min: statement.double(2),
                        max: statement.double(3), sum: statement.double(4)))
            }
            buckets = Self.merged(buckets, part)
        }
        return buckets
    }

    /// How far before a series' start the scan begins: a device whose clock runs ahead of the
    /// gateway's by less than this is still found. Readings from clocks further ahead are
    /// served by the aggregate path (steps of whole minutes) but may be missed by the raw one.
    public static let rawScanSlackMs: Int64 = 10 * 60_000

    /// The slot ranges holding the rows written since `sinceMs` (by the gateway's clock, less
    /// the slack): one range, two when they wrap around the end of the ring, the whole ring
    /// when the marks do not reach back that far.
    func slotRanges(forReadingsSince sinceMs: Int64) throws(SQLiteError) -> [(Int64, Int64)] {
        var capacity: Int64 = 1
        var next: Int64 = 0
        var floor: Int64 = 0
        let ring = try database.statement("SELECT capacity, next_seqno, floor_seqno FROM rings WHERE name = 'readings'")
        if try ring.step() {
            capacity = ring.int64(0)
            next = ring.int64(1)
            floor = ring.int64(2)
        }
        ring.reset()
        let start = try RingStore.markedRow(in: database, atOrBefore: sinceMs - Self.rawScanSlackMs) ?? 0
        return RingCursor(capacity: max(1, capacity), next: next, floor: floor).slotRanges(from: start)
    }

    /// Two bucket lists in time order, joined; buckets at the same time are combined.
    static func merged(_ a: [Bucket], _ b: [Bucket]) -> [Bucket] {
        guard !a.isEmpty else { return b }
        guard !b.isEmpty else { return a }
        var result: [Bucket] = []
        result.reserveCapacity(a.count + b.count)
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            let next: Bucket
            if j == b.count || (i < a.count && a[i].timeMs <= b[j].timeMs) {
                next = a[i]
                i += 1
            } else {
                next = b[j]
                j += 1
            }
            result.appendMerging(next)
        }
        return result
    }

    public struct Alert: Sendable, Equatable {
        public var alertID: String
        public var device: String
        public var type: String
        public var subject: String
        public var state: String
        public var value: Double
        public var tsMs: Int64
    }

    /// Raised-now alerts (with the time they were raised) or the history, newest first.
    public func alerts(activeOnly: Bool, sinceMs: Int64, limit: Int) throws(StoreError) -> [Alert] {
        var result: [Alert] = []
        let sql =
            activeOnly
            ? "SELECT alert_id, device, type, subject, state, value, since_ms FROM alerts_active "
                + "WHERE since_ms >= ?1 ORDER BY since_ms DESC LIMIT ?2"
            : "SELECT alert_id, device, type, subject, state, value, ts_ms FROM alerts "
                + "WHERE ts_ms >= ?1 ORDER BY ts_ms DESC LIMIT ?2"
        do {
            let statement = try database.statement(sql)
            defer { statement.reset() }
            statement.bind(arguments: sinceMs, max(1, limit))
            while try statement.step() {
                result.append(
                    Alert(
                        alertID: statement.text(0) ?? "", device: statement.text(1) ?? "",
                        type: statement.text(2) ?? "", subject: statement.text(3) ?? "",
                        state: statement.text(4) ?? "", value: statement.double(5), tsMs: statement.int64(6)))
            }
        } catch {
            throw .sqlite(error, doing: "reading alerts from \(path)")
        }
        return result
    }

    /// Gauge sites and the level state each gauge is in now (`normal` when no level alert is raised).
    public func gaugeSites() throws(StoreError) -> [(site: GaugeSite, state: String)] {
        var states: [String: String] = [:]
        try rows("SELECT device, state FROM alerts_active WHERE type = 'water_level'") {
            states[$0.text(0) ?? ""] = $0.text(1)
        }
        var result: [(site: GaugeSite, state: String)] = []
        try rows("SELECT sensor, lat, lon, radius_m FROM sensor_sites ORDER BY sensor") {
            let sensor = $0.text(0) ?? ""
            result.append(
                (
                    GaugeSite(
                        sensor: sensor, position: GeoPoint(lat: $0.double(1), lon: $0.double(2)), radiusM: $0.double(3)),
                    states[sensor] ?? "normal"
                ))
        }
        return result
    }

    /// Rejects held in the ring, by reason.
    public func rejectCounts() throws(StoreError) -> [String: Int64] {
        var counts: [String: Int64] = [:]
        try rows("SELECT reason, count(*) FROM rejects GROUP BY reason") { counts[$0.text(0) ?? "?"] = $0.int64(1) }
        return counts
    }
}

extension [StoreReader.Bucket] {
    /// Appends in time order, folding a bucket into the last one when they share a time.
    mutating func appendMerging(_ bucket: StoreReader.Bucket) {
        if let last, last.timeMs == bucket.timeMs {
            self[count - 1].merge(bucket)
        } else {
            append(bucket)
        }
    }
}
