public import Advisories
import Aggregation
import Geo
import SQLite
import Telemetry

/// What the REST API needs from the writer: minute marks into the reading ring, and the
/// newest value of each series.
extension RingStore {
    /// Records the first row number of a wall-clock minute and forgets marks that point
    /// before the ring's oldest row (all but the newest of those, which still bounds a scan).
    /// The first row number written in the newest marked minute at or before `minuteMs` (nil
    /// when no mark reaches back that far): where a scan of the rows written since then starts.
    static func markedRow(in database: Database, atOrBefore minuteMs: Int64) throws(SQLiteError) -> Int64? {
        let mark = try database.statement(
            "SELECT seqno FROM reading_marks WHERE minute_ms <= ? ORDER BY minute_ms DESC LIMIT 1")
        defer { mark.reset() }
        mark.bind(arguments: minuteMs)
        return try mark.step() ? mark.int64(0) : nil
    }

    func mark(minute: Int64, readings: RingCursor) throws {
        let insert = try database.statement("INSERT OR IGNORE INTO reading_marks(minute_ms, seqno) VALUES (?, ?)")
        insert.bind(arguments: minute, readings.next)
        try insert.run()
        let prune = try database.statement(
            """
            DELETE FROM reading_marks
            WHERE minute_ms < (SELECT max(minute_ms) FROM reading_marks WHERE seqno <= ?)
            """)
        prune.bind(arguments: readings.oldest)
        try prune.run()
    }

    /// One pass over the ring at start-up (about 0.3 s per million readings).
    func loadLatest() throws {
        var updates: [LatestValues.Update] = []
        let select = try database.statement("SELECT device_id, signal_id, ts_ms, value FROM readings")
        while try select.step() {
            guard let signal = Signal.catalogue.first(where: { $0.id == Int(select.int64(1)) }) else { continue }
            updates.append(
                LatestValues.Update(
                    deviceRowID: select.int64(0), slot: signal.slot,
                    value: LatestValues.Value(tsMs: select.int64(2), value: select.double(3))))
            if updates.count >= 65_536 {
                latest.apply(updates)
                updates.removeAll(keepingCapacity: true)
            }
        }
        select.reset()
        latest.apply(updates)
        lastMarkMinute = try database.scalarInt("SELECT max(minute_ms) FROM reading_marks") ?? .min
    }
}

extension RingStore {
    /// The water levels written since `sinceMs` (by the gateway's clock), by sensor in time
    /// order, for rebuilding the trend and rate of rise at start. Scans only the slots written
    /// since then (the minute marks bound it), not the whole ring.
    public func recentWaterLevels(sinceMs: Int64) throws(StoreError) -> [String: [(tsMs: Int64, levelCm: Double)]] {
        var levels: [String: [(tsMs: Int64, levelCm: Double)]] = [:]
        do {
            let start = try Self.markedRow(in: database, atOrBefore: sinceMs) ?? 0
            let ranges = readingsRing.slotRanges(from: start)
            let select = try database.statement(
                "SELECT device_id, ts_ms, value FROM readings WHERE slot BETWEEN ? AND ? AND signal_id = ?")
            for (from, to) in ranges {
                select.bind(arguments: from, to, Signal.waterLevel.id)
                while try select.step() {
                    levels[deviceName(select.int64(0)), default: []].append((select.int64(1), select.double(2)))
                }
                select.reset()
            }
        } catch {
            throw .sqlite(error, doing: "reading recent water levels")
        }
        return levels.mapValues { $0.sorted { $0.tsMs < $1.tsMs } }
    }

    /// Gauge sites as stored (configured ones and those set through the API).
    public func sensorSites() throws(StoreError) -> [GaugeSite] {
        do {
            var sites: [GaugeSite] = []
            let select = try database.statement("SELECT sensor, lat, lon, radius_m FROM sensor_sites ORDER BY sensor")
            while try select.step() {
                sites.append(
                    GaugeSite(
                        sensor: select.text(0) ?? "", position: GeoPoint(lat: select.double(1), lon: select.double(2)),
                        radiusM: select.double(3)))
            }
            select.reset()
            return sites
        } catch {
            throw .sqlite(error, doing: "reading sensor sites")
        }
    }

    /// Stores (or replaces) gauge sites in one transaction.
    public func saveSensorSites(_ sites: [GaugeSite], source: String, nowMs: Int64) throws(StoreError) {
        guard !sites.isEmpty else { return }
        do {
            try database.transaction {
                let upsert = try database.statement(
                    """
                    INSERT INTO sensor_sites(sensor, lat, lon, radius_m, source, updated_ms) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(sensor) DO UPDATE SET lat = excluded.lat, lon = excluded.lon,
                        radius_m = excluded.radius_m, source = excluded.source, updated_ms = excluded.updated_ms
                    """)
                for site in sites {
                    upsert.bind(
                        arguments: site.sensor, site.position.lat, site.position.lon, site.radiusM, source, nowMs)
                    try upsert.run()
                }
            }
        } catch let error as SQLiteError {
            throw .sqlite(error, doing: "saving sensor sites")
        } catch {
            throw .invalidConfiguration("saving sensor sites: \(error)")
        }
    }
}
