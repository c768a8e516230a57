import Aggregation
import Foundation
import SQLite
import Telemetry
import Testing

@testable import RingStore

/// Aggregates against values computed by hand for a known stream, with the clock driven by the test.
@Suite struct AggregateTests {
    let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z, on an hour boundary
    let gauge = DeviceID(sensor: SensorID("gauge-1")!)

    func level(_ seq: UInt32, at offset: Int64, _ value: Double) -> IngestBatch.Item {
        .readings(device: gauge, ts: base + offset, seq: seq, readings: [Reading(signal: .waterLevel, value: value)])
    }

    func commit(_ store: RingStore, _ items: [IngestBatch.Item], now offset: Int64) throws -> CommitSummary {
        var batch = IngestBatch()
        for item in items { batch.append(item) }
        return try store.commit(batch, nowMs: base + offset)
    }

    func row(_ db: Database, window: Int64, start: Int64) throws -> [Double]? {
        let select = try db.statement(
            "SELECT count, min, max, mean, last, revision, sum FROM aggregates_v WHERE window_s = ? AND start_ms = ?")
        select.bind(arguments: window, base + start)
        guard try select.step() else { return nil }
        return (0..<7).map { select.double(Int32($0)) }
    }

    @Test func windowsAreExactAndLateDataMakesANewRevision() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 10_000), logger: quiet)
        // Six readings in the first minute: 1...6 at 0 s, 10 s, ..., 50 s.
        _ = try commit(
            store, (0..<6).map { level(UInt32($0 + 1), at: Int64($0) * 10_000, Double($0 + 1)) }, now: 55_000)
        let db = try reader(directory)
        #expect(try row(db, window: 60, start: 0) == nil, "still open")
        // Closed at end + lateness (60 s + 2 s), with or without new data.
        #expect(try commit(store, [], now: 61_999).aggregates.isEmpty)
        let closed = try commit(store, [], now: 62_000)
        #expect(try row(db, window: 60, start: 0) == [6, 1, 6, 3.5, 6, 1, 21])
        #expect(closed.aggregates.count == 1)
        #expect(
            closed.aggregates.first?.stats
                == WindowStats(count: 6, sum: 21, min: 1, max: 6, firstTs: base, lastTs: base + 50_000, last: 6))
        #expect(closed.aggregates.first?.revision == 1)
        #expect(closed.aggregates.first?.device == "gauge-1")
        #expect(closed.aggregates.first?.signal == "level_cm")

        // A buffered reading from 30 s arrives at 70 s: revision 2, counted once, `last` unchanged.
        let late = try commit(store, [level(7, at: 30_000, 100)], now: 70_000)
        #expect(try row(db, window: 60, start: 0) == [7, 1, 100, 121.0 / 7, 6, 2, 121])
        #expect(late.aggregates.map(\.revision) == [2])
        // Its replay (same seq) is a duplicate: no third revision, no double count.
        let replay = try commit(store, [level(7, at: 30_000, 100)], now: 71_000)
        #expect(replay.duplicatesSkipped == 1)
        #expect(replay.aggregates.isEmpty)
        #expect(try row(db, window: 60, start: 0) == [7, 1, 100, 121.0 / 7, 6, 2, 121])

        // The hour is not shown until it closes, then holds every minute, late data included.
        _ = try commit(store, [level(8, at: 120_500, 4)], now: 121_000)
        #expect(try row(db, window: 3600, start: 0) == nil)
        let hour = try commit(store, [], now: 3_602_000)
        #expect(try row(db, window: 3600, start: 0) == [8, 1, 100, 125.0 / 8, 4, 1, 125])
        #expect(hour.aggregates.contains { $0.windowS == 3600 && $0.revision == 1 })
        // Late data for a closed hour revises the hour too.
        let lateHour = try commit(store, [level(9, at: 10_000, -50)], now: 3_700_000)
        #expect(lateHour.aggregates.map(\.windowS).sorted() == [60, 3600])
        #expect(try row(db, window: 3600, start: 0)?[5] == 2)
        #expect(try row(db, window: 3600, start: 0)?[1] == -50)
        #expect(try row(db, window: 60, start: 0)?[0] == 8)
    }

    @Test func openWindowsSurviveARestart() throws {
        let directory = try TemporaryDirectory()
        do {
            let store = try RingStore(configuration: configuration(directory, capacity: 10_000), logger: quiet)
            _ = try commit(store, [level(1, at: 1_000, 10), level(2, at: 2_000, 20)], now: 3_000)
        }
        let store = try RingStore(configuration: configuration(directory, capacity: 10_000), logger: quiet)
        _ = try commit(store, [level(3, at: 3_000, 30)], now: 4_000)
        let closed = try commit(store, [], now: 62_000)
        #expect(closed.aggregates.first?.stats.count == 3)
        #expect(try row(reader(directory), window: 60, start: 0) == [3, 10, 30, 20, 30, 1, 60])
    }

    @Test func aFailedCommitDoesNotLeaveWindowsAheadOfTheFile() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 100_000), logger: quiet)
        _ = try commit(store, [level(1, at: 1_000, 10)], now: 2_000)
        let pages = try store.database.pragmaInt("page_count")
        try store.database.execute("PRAGMA max_page_count=\(pages)")
        let big = (2..<3_000).map { level(UInt32($0), at: 2_000 + Int64($0), 99) }
        #expect(throws: StoreError.self) { try commit(store, big, now: 5_000) }
        try store.database.execute("PRAGMA max_page_count=1073741823")
        let closed = try commit(store, [], now: 62_000)
        #expect(closed.aggregates.first?.stats.count == 1, "only the committed reading is in the window")
        #expect(closed.aggregates.first?.stats.sum == 10)
    }

    @Test func hourlyRollupNeedsWindowsThatDivideAnHour() throws {
        let directory = try TemporaryDirectory()
        var config = configuration(directory, capacity: 10_000)
        config.aggregation.windowMs = 900_000
        let store = try RingStore(configuration: config, logger: quiet)
        _ = try commit(
            store, [level(1, at: 100, 1), level(2, at: 900_100, 2), level(3, at: 1_800_100, 3)], now: 1_800_200)
        let summary = try commit(store, [], now: 3_602_000)
        #expect(summary.aggregates.filter { $0.windowS == 900 }.count == 2, "the third quarter closed here")
        let hours = try commit(store, [level(4, at: 2_700_100, 4)], now: 3_700_000)
        #expect(hours.aggregates.contains { $0.windowS == 3600 && $0.stats.count == 4 })
    }

    /// Many series close over several commits (a chunk each), and a stop halfway loses
    /// nothing and counts nothing twice: the restart rebuilds only the series not yet written.
    @Test func aClosedWindowIsWrittenInChunksAndSurvivesAStopHalfway() throws {
        let directory = try TemporaryDirectory()
        let gauges = (0..<1_500).map { DeviceID(sensor: SensorID(String(format: "g-%04d", $0))!) }
        func reading(_ index: Int, seq: UInt32, at offset: Int64) -> IngestBatch.Item {
            .readings(
                device: gauges[index], ts: base + offset, seq: seq,
                readings: [Reading(signal: .waterLevel, value: Double(index))])
        }
        func minuteRows(_ db: Database) throws -> [String: (count: Int64, revision: Int64)] {
            let select = try db.statement(
                "SELECT device, count, revision FROM aggregates_v WHERE window_s = 60 AND start_ms = ?")
            select.bind(arguments: base)
            var rows: [String: (count: Int64, revision: Int64)] = [:]
            while try select.step() { rows[select.text(0) ?? ""] = (select.int64(1), select.int64(2)) }
            return rows
        }
        var sent: [AggregateRow] = []
        do {
            let store = try RingStore(configuration: configuration(directory, capacity: 100_000), logger: quiet)
            _ = try commit(store, gauges.indices.map { reading($0, seq: 1, at: 1_000) }, now: 55_000)
            sent += try commit(store, [], now: 62_000).aggregates
            #expect(try minuteRows(reader(directory)).count == RingStore.closingChunkMin, "one chunk per commit")
            sent += try commit(store, [], now: 62_010).aggregates
            #expect(try minuteRows(reader(directory)).count == 2 * RingStore.closingChunkMin)
            #expect(store.aggregationDue(nowMs: base + 62_100), "the rest is due without traffic")
        }
        // Stopped after two chunks; a late reading for a written series and one for a series
        // still to write arrive after the restart.
        let store = try RingStore(configuration: configuration(directory, capacity: 100_000), logger: quiet)
        sent += try commit(store, [reading(3, seq: 2, at: 2_000), reading(1_400, seq: 2, at: 2_000)], now: 62_020)
            .aggregates
        var now: Int64 = 62_030
        while store.aggregationDue(nowMs: base + now) && now < 70_000 {
            sent += try commit(store, [], now: now).aggregates
            now += 50
        }
        let rows = try minuteRows(reader(directory))
        #expect(rows.count == gauges.count)
        #expect(rows["g-0003"]! == (2, 2), "written before the stop: the late reading is a revision")
        #expect(rows["g-1400"]! == (2, 1), "written after: the late reading joined it")
        #expect(rows.values.filter { $0.count == 1 }.count == gauges.count - 2)
        #expect(rows.values.allSatisfy { $0.revision == 1 || $0.count == 2 })
        let minutes = sent.filter { $0.windowS == 60 }
        #expect(minutes.count == gauges.count + 1, "each window sent once, g-0003 twice")
        // The hour closes (in chunks too) once its minutes are all written: every hour once.
        var hours: [AggregateRow] = []
        now = 3_602_000
        repeat {
            hours += try commit(store, [], now: now).aggregates.filter { $0.windowS == 3600 }
            now += 50
        } while store.aggregationDue(nowMs: base + now) && now < 3_700_000
        #expect(hours.count == gauges.count)
        #expect(Set(hours.map(\.device)).count == gauges.count)
        #expect(hours.reduce(0) { $0 + $1.stats.count } == Int64(gauges.count + 2))
    }
}
