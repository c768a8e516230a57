import Foundation
import SQLite
import Telemetry
import TestSupport
import Testing

@testable import RingStore

/// `StoreReader.series` against buckets computed by brute force from the same readings, on
/// the raw path, the minute-aggregate path, the hourly path, and with an open tail.
@Suite struct SeriesTests {
    let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z
    let gauge = DeviceID(sensor: SensorID("gauge-7")!)

    /// Three hours of one reading every 5 s with pseudo-random values (fixed seed), committed
    /// in one-minute batches with the clock just after each batch, so windows close on the way.
    func fill(_ store: RingStore, until endOffset: Int64) throws -> [(ts: Int64, value: Double)] {
        var generator = SplitMix(seed: 42)
        var written: [(Int64, Double)] = []
        var batch = IngestBatch()
        var seq: UInt32 = 1
        var offset: Int64 = 0
        while offset < endOffset {
            let value = (Double(generator.next() % 100_000) / 100).rounded() / 10 - 200
            written.append((base + offset, value))
            batch.append(
                .readings(
                    device: gauge, ts: base + offset, seq: seq, readings: [Reading(signal: .waterLevel, value: value)]))
            seq += 1
            offset += 5_000
            if offset % 60_000 == 0 {
                _ = try store.commit(batch, nowMs: base + offset + 500)
                batch.removeAll()
            }
        }
        _ = try store.commit(batch, nowMs: base + offset + 500)
        return written
    }

    func bruteForce(_ readings: [(ts: Int64, value: Double)], from: Int64, to: Int64, step: Int64) -> [StoreReader
        .Bucket]
    {
        var buckets: [Int64: StoreReader.Bucket] = [:]
        for (ts, value) in readings where ts >= from && ts < to {
            let time = ts - ts % step
            if var bucket = buckets[time] {
                bucket.count += 1
                bucket.min = min(bucket.min, value)
                bucket.max = max(bucket.max, value)
                bucket.sum += value
                buckets[time] = bucket
            } else {
                buckets[time] = StoreReader.Bucket(timeMs: time, count: 1, min: value, max: value, sum: value)
            }
        }
        return buckets.values.sorted { $0.timeMs < $1.timeMs }
    }

    func expectSame(_ actual: [StoreReader.Bucket], _ expected: [StoreReader.Bucket]) {
        #expect(actual.count == expected.count)
        for (a, e) in zip(actual, expected) {
            #expect(a.timeMs == e.timeMs)
            #expect(a.count == e.count)
            #expect(a.min == e.min)
            #expect(a.max == e.max)
            #expect(abs(a.sum - e.sum) < 1e-6, "sum at \(a.timeMs)")
        }
    }

    @Test func everyPathMatchesTheReadings() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 100_000), logger: quiet)
        let readings = try fill(store, until: 3 * 3_600_000 + 90_000)
        let reader = try StoreReader(path: directory.path + "/store.db")
        let device = try #require(try reader.devices(named: "gauge-7").first)
        let from = base
        let to = base + 4 * 3_600_000

        let raw = try reader.series(
            deviceRowID: device.rowID, signalID: Signal.waterLevel.id, fromMs: from, toMs: to, stepMs: 7_000,
            windowMs: 60_000)
        #expect(raw.source == .raw)
        expectSame(raw.buckets, bruteForce(readings, from: from, to: to, step: 7_000))

        // Minute windows: closed ones from aggregates, the still-open last minute from raw readings.
        let minutes = try reader.series(
            deviceRowID: device.rowID, signalID: Signal.waterLevel.id, fromMs: from, toMs: to, stepMs: 300_000,
            windowMs: 60_000)
        #expect(minutes.source == .aggregates)
        expectSame(minutes.buckets, bruteForce(readings, from: from, to: to, step: 300_000))

        let hours = try reader.series(
            deviceRowID: device.rowID, signalID: Signal.waterLevel.id, fromMs: from, toMs: to, stepMs: 3_600_000,
            windowMs: 60_000)
        #expect(hours.source == .aggregates)
        expectSame(hours.buckets, bruteForce(readings, from: from, to: to, step: 3_600_000))

        // The same with the writer's open windows for the newest minutes instead of a ring scan.
        for step: Int64 in [60_000, 300_000, 3_600_000, 7_200_000] {
            let live = try reader.series(
                deviceRowID: device.rowID, signalID: Signal.waterLevel.id, fromMs: from, toMs: to, stepMs: step,
                windowMs: 60_000, openWindows: store.openWindows)
            #expect(live.source == .aggregates)
            expectSame(live.buckets, bruteForce(readings, from: from, to: to, step: step))
        }
        #expect(!store.openWindows.windows(deviceRowID: device.rowID, signalID: Signal.waterLevel.id).isEmpty)

        // A range inside the data, not starting at an hour.
        let inner = try reader.series(
            deviceRowID: device.rowID, signalID: Signal.waterLevel.id, fromMs: base + 1_800_000,
            toMs: base + 2 * 3_600_000 + 120_000, stepMs: 60_000, windowMs: 60_000)
        expectSame(
            inner.buckets,
            bruteForce(readings, from: base + 1_800_000, to: base + 2 * 3_600_000 + 120_000, step: 60_000))
        // Another signal of the same device has nothing.
        let empty = try reader.series(
            deviceRowID: device.rowID, signalID: Signal.rainRate.id, fromMs: from, toMs: to, stepMs: 60_000,
            windowMs: 60_000)
        #expect(empty.buckets.isEmpty)
    }

    @Test func aggregatesAnswerAfterTheRingOverwroteTheReadings() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 500), logger: quiet)
        let readings = try fill(store, until: 3_600_000)
        let reader = try StoreReader(path: directory.path + "/store.db")
        let device = try #require(try reader.devices(named: "gauge-7").first)
        // 720 readings went in, 500 are held: the raw path loses the oldest, the aggregate path does not.
        let closedUntil = base + 3_540_000
        let minutes = try reader.series(
            deviceRowID: device.rowID, signalID: Signal.waterLevel.id, fromMs: base, toMs: closedUntil, stepMs: 60_000,
            windowMs: 60_000)
        expectSame(minutes.buckets, bruteForce(readings, from: base, to: closedUntil, step: 60_000))
        let raw = try reader.series(
            deviceRowID: device.rowID, signalID: Signal.waterLevel.id, fromMs: base, toMs: closedUntil, stepMs: 30_000,
            windowMs: 60_000)
        #expect(raw.buckets.reduce(0) { $0 + $1.count } < Int64(readings.count))
    }

    @Test func rawSeriesScansOnlyTheSlotsWrittenSinceItsStart() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 500), logger: quiet)
        let readings = try fill(store, until: 3_600_000)  // 720 rows in 500 slots: the ring has wrapped
        let reader = try StoreReader(path: directory.path + "/store.db")
        let ranges = try reader.slotRanges(forReadingsSince: base + 50 * 60_000)
        // From the mark of minute 40 (50 minus the slack) to the newest row, across the wrap.
        #expect(ranges.count == 2)
        #expect(ranges.last?.0 == 0 && ranges.last?.1 == 219)
        let scanned = ranges.reduce(Int64(0)) { $0 + $1.1 - $1.0 + 1 }
        #expect(scanned < 500 && scanned >= 120)
        let device = try #require(try reader.devices(named: "gauge-7").first)
        let from = base + 50 * 60_000
        let raw = try reader.series(
            deviceRowID: device.rowID, signalID: Signal.waterLevel.id, fromMs: from, toMs: base + 3_600_000,
            stepMs: 15_000, windowMs: 60_000)
        expectSame(raw.buckets, bruteForce(readings, from: from, to: base + 3_600_000, step: 15_000))
        // Before any mark: the whole ring.
        #expect(try reader.slotRanges(forReadingsSince: base - 86_400_000).map { $0.1 - $0.0 + 1 }.reduce(0, +) == 500)
    }

    @Test func aFileWithTheSeriesIndexIsMigratedAway() throws {
        let directory = try TemporaryDirectory()
        do {
            let store = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
            _ = try fill(store, until: 120_000)
        }
        // Make it look like a file written by a gatewayd at schema 5.
        let db = try Database(path: directory.path + "/store.db")
        try db.execute(
            """
            DROP TABLE reading_marks;
            DROP VIEW sensor_sites_v;
            DROP TABLE sensor_sites;
            DROP TABLE advisories_told;
            ALTER TABLE rings DROP COLUMN dropped_for_space;
            CREATE INDEX readings_series ON readings(device_id, signal_id, ts_ms);
            PRAGMA user_version = 5;
            """)
        let reopened = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
        let check = try reader(directory)
        #expect(try check.pragmaInt("user_version") == Schema.version)
        #expect(try check.scalarInt("SELECT count(*) FROM sqlite_master WHERE name = 'readings_series'") == 0)
        #expect(try check.scalarInt("SELECT count(*) FROM sqlite_master WHERE name = 'reading_marks'") == 1)
        #expect(try check.scalarInt("SELECT count(*) FROM readings") == 24)
        _ = reopened
    }

    /// Migration 10 rewrites the ring's definition in place: a file of schema 9 keeps every
    /// reading, passes SQLite's integrity check, and takes new readings afterwards.
    @Test func aVersion9FileLosesTheRingsNotNullInPlace() throws {
        let directory = try TemporaryDirectory()
        do {
            let store = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
            _ = try fill(store, until: 120_000)
        }
        // Make it look like a file written by a gatewayd at schema 9: the definition as migration 1
        // wrote it.
        let first = Schema.migrations[0]
        let start = try #require(first.range(of: "CREATE TABLE readings("))
        let end = try #require(first.range(of: ");", range: start.upperBound..<first.endIndex))
        let original = String(first[start.lowerBound..<end.lowerBound]) + ")"
        #expect(original.contains("device_id INTEGER NOT NULL"))
        do {
            let db = try Database(path: directory.path + "/store.db")
            let cookie = try db.pragmaInt("schema_version")
            try db.execute("PRAGMA writable_schema=ON")
            let rewrite = try db.statement(
                "UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = 'readings'")
            rewrite.bind(arguments: original)
            try rewrite.run()
            try db.execute("PRAGMA writable_schema=OFF; PRAGMA schema_version = \(cookie + 1)")
            try db.execute("PRAGMA user_version = 9")
            let definition = try db.scalarText("SELECT sql FROM sqlite_schema WHERE name = 'readings'")
            #expect(definition?.contains("NOT NULL") == true)
        }
        let reopened = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
        let check = try reader(directory)
        #expect(try check.pragmaInt("user_version") == Schema.version)
        let definition = try #require(try check.scalarText("SELECT sql FROM sqlite_schema WHERE name = 'readings'"))
        #expect(!definition.contains("NOT NULL"))
        #expect(definition.contains("slot INTEGER PRIMARY KEY"))
        #expect(try check.scalarText("PRAGMA integrity_check") == "ok")
        #expect(try check.scalarInt("SELECT count(*) FROM readings_v WHERE device = 'gauge-7'") == 24)
        var batch = IngestBatch()
        batch.append(
            .readings(
                device: gauge, ts: base + 200_000, seq: 100,
                readings: [Reading(signal: .waterLevel, value: 1.5), Reading(signal: .batteryVoltage, value: 3.7)]))
        _ = try reopened.commit(batch, nowMs: base + 200_500)
        #expect(try check.scalarInt("SELECT count(*) FROM readings_v WHERE device = 'gauge-7'") == 26)
    }

    @Test func latestValuesAndDevicePages() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 10_000), logger: quiet)
        var batch = IngestBatch()
        for index in 0..<25 {
            let id = DeviceID(sensor: SensorID(String(format: "s-%02d", index))!)
            batch.append(
                .readings(
                    device: id, ts: base + Int64(index), seq: 1,
                    readings: [Reading(signal: .waterLevel, value: Double(index))]))
            batch.append(
                .readings(
                    device: id, ts: base + 1_000 + Int64(index), seq: 2,
                    readings: [Reading(signal: .waterLevel, value: Double(-index))]))
        }
        _ = try store.commit(batch, nowMs: base + 2_000)
        let reader = try StoreReader(path: directory.path + "/store.db")
        var names: [String] = []
        var after: (kind: DeviceKind, name: String)?
        repeat {
            let page = try reader.devices(kind: .water, after: after, limit: 10)
            names += page.map(\.name)
            after = page.count == 10 ? (page.last!.kind, page.last!.name) : nil
        } while after != nil
        #expect(names == (0..<25).map { String(format: "s-%02d", $0) })
        #expect(try reader.devices(kind: .vehicle, after: nil, limit: 10).isEmpty)
        let device = try #require(try reader.devices(named: "s-07").first)
        let latest = store.latest.values(deviceRowID: device.rowID, kind: .water)
        #expect(latest.map(\.signal) == [.waterLevel])
        #expect(latest.first?.value == LatestValues.Value(tsMs: base + 1_007, value: -7))
        #expect(store.latest.values(deviceRowID: device.rowID, kind: .vehicle).isEmpty)
        // Reopened, the store finds the same newest values in the ring.
        let reopened = try RingStore(configuration: configuration(directory, capacity: 10_000), logger: quiet)
        #expect(reopened.latest.values(deviceRowID: device.rowID, kind: .water).first?.value.value == -7)
    }
}
