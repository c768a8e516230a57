import Foundation
import SQLite
import Telemetry
import Testing

@testable import RingStore

/// Position retention in the store, with the clock driven by the test.
@Suite struct RetentionTests {
    let base: Int64 = 1_767_225_600_000
    let vehicle = DeviceID(vin: VIN("1HGCM82633A004352")!)
    let gauge = DeviceID(sensor: SensorID("gauge-1")!)

    func store(_ directory: TemporaryDirectory) throws -> RingStore {
        var settings = configuration(directory, capacity: 200_000)
        settings.positionRetentionMs = 3_600_000
        settings.aggregation.enabled = false
        return try RingStore(configuration: settings, logger: quiet)
    }

    /// `fixes` GPS messages (3 position rows each) and as many gauge levels, written at `offset`.
    func write(_ store: RingStore, fixes: Int, at offset: Int64, firstSeq: UInt32 = 1) throws {
        var batch = IngestBatch()
        for index in 0..<fixes {
            let seq = firstSeq + UInt32(index)
            batch.append(
                .readings(
                    device: vehicle, ts: base + offset + Int64(index), seq: seq,
                    readings: [
                        Reading(signal: .latitude, value: 3.1), Reading(signal: .longitude, value: 101.6),
                        Reading(signal: .gpsSpeed, value: 20),
                    ]))
            batch.append(
                .readings(
                    device: gauge, ts: base + offset + Int64(index), seq: seq,
                    readings: [Reading(signal: .waterLevel, value: 40)]))
        }
        _ = try store.commit(batch, nowMs: base + offset)
    }

    func count(_ directory: TemporaryDirectory, _ signals: String) throws -> Int64 {
        let db = try Database(path: directory.path + "/store.db", options: [.readOnly])
        return try db.scalarInt("SELECT count(*) FROM readings_v WHERE signal IN (\(signals))") ?? -1
    }

    /// 60 000 position rows written over 20 minutes, an hour and more ago: erased a slice per
    /// commit (no commit erases more than the slice), every one in the end, the gauge untouched.
    @Test(arguments: [20, 1])
    func aLargeSweepGoesASlicePerCommit(minutes: Int) throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        for minute in 0..<minutes {
            try write(
                store, fixes: 20_000 / minutes, at: Int64(minute) * 60_000,
                firstSeq: UInt32(minute * 20_000 / minutes + 1))
        }
        let now = base + 90 * 60_000
        var commits = 0
        var erased = 0
        repeat {
            let summary = try store.commit(IngestBatch(), nowMs: now)
            #expect(Int64(summary.positionsErased) <= RingStore.sweepSliceRows)
            erased += summary.positionsErased
            commits += 1
        } while store.aggregationDue(nowMs: now) && commits < 100
        #expect(erased == 60_000)
        #expect(commits > 3, "the sweep was not sliced")
        #expect(try count(directory, "'lat_deg', 'lon_deg', 'gps_speed_kmh'") == 0)
        #expect(try count(directory, "'level_cm'") == 20_000)
        #expect(!store.aggregationDue(nowMs: now), "a finished sweep waits for the next minute")
    }

    /// Positions younger than the retention stay; after a stop (no mark for hours), the rows of
    /// the last minute before it go by their own time.
    @Test func youngPositionsStayAndTheMinuteBeforeAStopGoes() throws {
        let directory = try TemporaryDirectory()
        let store = try store(directory)
        try write(store, fixes: 10, at: 0)
        // Ten minutes later: nothing is old enough.
        _ = try store.commit(IngestBatch(), nowMs: base + 10 * 60_000)
        #expect(try count(directory, "'lat_deg'") == 10)
        // Back after three hours: the rows were written in the minute of the last mark before
        // the stop, and they are erased by their time.
        let summary = try store.commit(IngestBatch(), nowMs: base + 3 * 3_600_000)
        #expect(summary.positionsErased == 30)
        #expect(summary.positionCutoffMs == base + 2 * 3_600_000)
        #expect(try count(directory, "'lat_deg', 'lon_deg', 'gps_speed_kmh'") == 0)
        #expect(try count(directory, "'level_cm'") == 10)
    }
}
