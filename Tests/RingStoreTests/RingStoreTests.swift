import Foundation
import Logging
import SQLite
import Telemetry
import Testing

@testable import RingStore

/// A temporary directory removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "ringstore-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

let quiet = Logger(level: .critical)
let vin = VIN("1HGCM82633A004352")!
let sensor = SensorID("drain-1")!

func configuration(_ directory: TemporaryDirectory, capacity: Int64) -> RingStore.Configuration {
    var configuration = RingStore.Configuration(path: directory.path + "/store.db")
    configuration.capacityReadings = capacity
    configuration.synchronous = .normal
    configuration.reserveBytes = 0
    return configuration
}

/// Writes `messages` water messages of one reading each, `perBatch` per commit, seq from `firstSeq`.
func writeWater(_ store: RingStore, messages: Int, perBatch: Int = 500, firstSeq: UInt32 = 0) throws {
    var batch = IngestBatch()
    var seq = firstSeq
    for index in 0..<messages {
        batch.append(
            .readings(
                device: DeviceID(sensor: sensor), ts: 1_767_225_600_000 + Int64(seq), seq: seq,
                readings: [Reading(signal: .waterLevel, value: Double(seq))]))
        seq += 1
        if (index + 1) % perBatch == 0 || index == messages - 1 {
            try store.commit(batch, nowMs: 1_767_225_600_000)
            batch.removeAll()
        }
    }
}

func reader(_ directory: TemporaryDirectory) throws -> Database {
    try Database(path: directory.path + "/store.db", options: [.readOnly])
}

func fileFootprint(_ directory: TemporaryDirectory) -> Int {
    let manager = FileManager.default
    return ["store.db", "store.db-wal"].reduce(0) { total, name in
        let attributes = try? manager.attributesOfItem(atPath: directory.path + "/" + name)
        return total + ((attributes?[.size] as? Int) ?? 0)
    }
}

@Suite struct RingCursorTests {
    @Test func slotRangesOfTheRowsWrittenSinceAStart() {
        let ring = RingCursor(capacity: 10, next: 25)  // rows 15..<25 in slots 5...9, 0...4
        #expect(ring.slotRanges(from: 25).isEmpty)
        #expect(ring.slotRanges(from: 21).map { [$0.0, $0.1] } == [[1, 4]])
        #expect(ring.slotRanges(from: 18).map { [$0.0, $0.1] } == [[8, 9], [0, 4]])
        #expect(ring.slotRanges(from: 0).map { [$0.0, $0.1] } == [[0, 9]], "rows before the oldest are gone")
    }

    @Test func slotsWrapAndEvictionsAreCounted() {
        var ring = RingCursor(capacity: 3)
        let taken = (0..<7).map { _ in ring.advance() }
        #expect(taken.map(\.slot) == [0, 1, 2, 0, 1, 2, 0])
        #expect(taken.map(\.evicts) == [false, false, false, true, true, true, true])
        #expect(ring.count == 3)
        #expect(ring.evicted == 4)
        #expect(ring.oldest == 4)
    }

    @Test func continuesFromAStoredPosition() {
        var ring = RingCursor(capacity: 10, next: 25)
        #expect(ring.advance() == (seqno: 25, slot: 5, evicts: true))
        #expect(ring.count == 10)
    }
}

@Suite struct RingStoreTests {
    /// Room made on a full disk comes from the oldest readings; the ring then grows back to
    /// its capacity by itself, reusing the freed slots.
    @Test func reclaimDropsTheOldestAndTheRingGrowsBack() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 10_000), logger: quiet)
        try writeWater(store, messages: 3_000)
        #expect(try store.reclaimSpace(atLeast: 1_000) == 1_000)
        #expect(store.statistics.readings == 2_000)
        // This disk is not really full: the store finds it has space and lifts its cap.
        #expect(store.recheckSpace())
        let db = try reader(directory)
        #expect(try db.scalarInt("SELECT min(seq) FROM readings_v") == 1_000)
        try writeWater(store, messages: 9_000, firstSeq: 3_000)
        #expect(store.statistics.readings == 10_000)
        #expect(try db.scalarInt("SELECT count(*) FROM readings") == 10_000)
        #expect(try db.scalarInt("SELECT min(seq) FROM readings_v") == 2_000)
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v WHERE value = seq") == 10_000)
        // Wrapped: the oldest slots (some emptied by the reclaim) take the newest rows.
        #expect(try store.reclaimSpace(atLeast: 500) == 500)
        store.recheckSpace()
        try writeWater(store, messages: 1_000, firstSeq: 12_000)
        #expect(try db.scalarInt("SELECT count(*) FROM readings") == 10_000)
        #expect(try db.scalarInt("SELECT min(seq) FROM readings_v") == 3_000)
        #expect(try db.scalarText("PRAGMA integrity_check") == "ok")
        // Reopened, it knows what was dropped.
        let reopened = try RingStore(configuration: configuration(directory, capacity: 10_000), logger: quiet)
        #expect(reopened.statistics.readings == 10_000)
    }

    /// A file limit far below the ring's capacity: commits that find it full make room and
    /// go on, the file stays under the limit, and what is kept is the newest.
    @Test func fileLimitKeepsTheNewestWithinIt() throws {
        let directory = try TemporaryDirectory()
        var settings = configuration(directory, capacity: 1_000_000)
        settings.maxFileBytes = 1 << 20
        settings.aggregation.enabled = false
        let store = try RingStore(configuration: settings, logger: quiet)
        var seq: UInt32 = 0
        var reclaims = 0
        for _ in 0..<200 {
            var batch = IngestBatch()
            for _ in 0..<500 {
                batch.append(
                    .readings(
                        device: DeviceID(sensor: sensor), ts: 1_767_225_600_000 + Int64(seq), seq: seq,
                        readings: [Reading(signal: .waterLevel, value: Double(seq))]))
                seq += 1
            }
            while true {
                do {
                    try store.commit(batch, nowMs: 1_767_225_600_000)
                    break
                } catch {
                    #expect(error.sqliteError?.code.primary == .full, "\(error)")
                    #expect(try store.reclaimSpace(atLeast: 1_000) > 0)
                    reclaims += 1
                }
            }
        }
        let db = try reader(directory)
        #expect(reclaims > 0)
        // The ring of a million never filled: what went, went for space, and nothing was
        // overwritten (the two counts are kept apart, also across a reopen).
        let dropped = store.statistics.readingsDroppedForSpace
        #expect(dropped == Int64(seq) - store.statistics.readings)
        #expect(store.statistics.readingsEvicted == 0)
        let reopened = try RingStore(configuration: settings, logger: quiet)
        #expect(reopened.statistics.readingsDroppedForSpace == dropped)
        #expect(reopened.statistics.readingsEvicted == 0)
        #expect(try db.scalarInt("PRAGMA page_count")! * db.scalarInt("PRAGMA page_size")! <= 1 << 20)
        #expect(try db.scalarInt("SELECT max(seq) FROM readings_v") == Int64(seq) - 1)
        let held = try db.scalarInt("SELECT count(*) FROM readings_v")!
        #expect(held > 10_000 && held < 100_000)
        #expect(try db.scalarInt("SELECT min(seq) FROM readings_v") == Int64(seq) - held)
    }

    @Test func capacityHoldsExactlyAndKeepsTheNewest() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
        try writeWater(store, messages: 3_000)
        #expect(store.statistics.readings == 1_000)
        #expect(store.statistics.readingsEvicted == 2_000)
        let db = try reader(directory)
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v") == 1_000)
        #expect(try db.scalarInt("SELECT min(seq) FROM readings_v") == 2_000)
        #expect(try db.scalarInt("SELECT max(seq) FROM readings_v") == 2_999)
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v WHERE value = seq") == 1_000)
        #expect(try db.scalarInt("SELECT count(*) FROM readings") == 1_000)
    }

    /// A message's readings go in one statement per run of consecutive slots. Runs that cross
    /// the ring's end, a message longer than a statement's run (`ReadingRows.maxRun`), one
    /// longer than the whole ring, and a slot written twice in one commit all leave exactly
    /// the newest readings, row n in slot n % capacity.
    @Test func messagesOfManyReadingsWrapTheRing() throws {
        let directory = try TemporaryDirectory()
        let capacity = 50
        let store = try RingStore(configuration: configuration(directory, capacity: Int64(capacity)), logger: quiet)
        let signals = Signal.catalogue.filter { $0.kind == .vehicle }
        var written: [Double] = []
        var seq: UInt32 = 0
        for commit in [[7, 13, 40], [3, 60, 1], [33, 25, 49, 51]] {
            var batch = IngestBatch()
            for size in commit {
                let readings = (0..<size).map { index in
                    Reading(signal: signals[index % signals.count], value: Double(written.count + index))
                }
                written += readings.map(\.value)
                batch.append(
                    .readings(
                        device: DeviceID(vin: vin), ts: 1_767_225_600_000 + Int64(seq), seq: seq, readings: readings))
                seq += 1
            }
            try store.commit(batch, nowMs: 1_767_225_600_000)
        }
        #expect(store.statistics.readings == Int64(capacity))
        #expect(store.statistics.readingsEvicted == Int64(written.count - capacity))
        let db = try reader(directory)
        let rows = try db.statement("SELECT slot, value FROM readings ORDER BY slot")
        var stored: [Int64: Double] = [:]
        while try rows.step() { stored[rows.int64(0)] = rows.double(1) }
        var expected: [Int64: Double] = [:]
        for (row, value) in written.enumerated() { expected[Int64(row % capacity)] = value }
        #expect(stored == expected)
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v") == Int64(capacity))
        #expect(try db.scalarInt("SELECT max(seq) FROM readings_v") == Int64(seq - 1))
    }

    /// The pipeline's row id travels with each message as a hint. A hint that no longer names
    /// the message's device (another device's row, a row that is gone) is not taken: the
    /// readings still land on their own device.
    @Test func aWrongRowHintIsNotTaken() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
        let other = DeviceID(sensor: SensorID("drain-2")!)
        var batch = IngestBatch()
        for (seq, device) in [DeviceID(sensor: sensor), other].enumerated() {
            batch.append(
                .readings(
                    device: device, ts: 1_767_225_600_000, seq: UInt32(seq),
                    readings: [Reading(signal: .waterLevel, value: 1)]))
        }
        try store.commit(batch, nowMs: 1_767_225_600_000)
        let ownRow = try #require(store.rowID(of: DeviceID(sensor: sensor)))
        let otherRow = try #require(store.rowID(of: other))
        batch.removeAll()
        for (seq, hint) in [(10, otherRow), (11, 99_999), (12, ownRow)] {
            batch.append(
                .readings(
                    device: DeviceID(sensor: sensor), ts: 1_767_225_600_000 + Int64(seq), seq: UInt32(seq),
                    readings: [Reading(signal: .waterLevel, value: Double(seq))]),
                rowID: hint)
        }
        try store.commit(batch, nowMs: 1_767_225_600_000)
        let db = try reader(directory)
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v WHERE device = 'drain-1'") == 4)
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v WHERE device = 'drain-2'") == 1)
        #expect(try db.scalarInt("SELECT count(*) FROM devices") == 2)
        #expect(try db.scalarInt("SELECT readings FROM devices_v WHERE device = 'drain-1'") == 4)
    }

    /// Row sizes depend a little on the values (SQLite stores integers in 1 to 8 bytes), so
    /// the file settles during the first lap after reaching capacity; from then on it must
    /// not grow at all, however long the gateway runs.
    @Test func fileStopsGrowingAtCapacity() throws {
        let directory = try TemporaryDirectory()
        let capacity = 20_000
        let store = try RingStore(configuration: configuration(directory, capacity: Int64(capacity)), logger: quiet)
        try writeWater(store, messages: 2 * capacity, firstSeq: 100_000)
        try store.checkpoint()
        let settled = fileFootprint(directory)
        var sizes: [Int] = []
        for lap in 2..<6 {
            try writeWater(store, messages: capacity, firstSeq: UInt32(100_000 + capacity * lap))
            try store.checkpoint()
            sizes.append(fileFootprint(directory))
        }
        #expect(settled > 0)
        #expect(sizes.allSatisfy { $0 <= settled }, "settled at \(settled), then \(sizes)")
        #expect(store.statistics.readings == Int64(capacity))
        // The bound in the docs: at most ~64 bytes per reading at this size.
        #expect(settled < capacity * 64, "\(settled) bytes for \(capacity) readings")
    }

    @Test func reopeningKeepsDataAndSequence() throws {
        let directory = try TemporaryDirectory()
        do {
            let store = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
            try writeWater(store, messages: 1_500)
        }
        let store = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
        #expect(store.statistics.readings == 1_000)
        #expect(store.statistics.readingsEvicted == 500)
        #expect(store.sequenceTracker(for: DeviceID(sensor: sensor))?.highest == 1_499)
        // The device's seq stream carries on; a replay of an old message is a duplicate.
        try writeWater(store, messages: 100, firstSeq: 1_500)
        try writeWater(store, messages: 1, firstSeq: 1_550)
        #expect(store.statistics.readingsEvicted == 600)
        let db = try reader(directory)
        #expect(try db.scalarInt("SELECT min(seq) FROM readings_v") == 600)
        #expect(try db.scalarInt("SELECT max(seq) FROM readings_v") == 1_599)
        #expect(try db.scalarInt("SELECT duplicates FROM devices_v WHERE device = 'drain-1'") == 1)
        #expect(try db.scalarInt("SELECT seq_gaps FROM devices_v WHERE device = 'drain-1'") == 0)
    }

    @Test func changingCapacityKeepsTheNewestRows() throws {
        let directory = try TemporaryDirectory()
        do {
            let store = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
            try writeWater(store, messages: 1_700)
        }
        do {
            let store = try RingStore(configuration: configuration(directory, capacity: 400), logger: quiet)
            #expect(store.statistics.readings == 400)
            let db = try reader(directory)
            #expect(try db.scalarInt("SELECT min(seq) FROM readings_v") == 1_300)
            #expect(try db.scalarInt("SELECT count(DISTINCT slot) FROM readings") == 400)
        }
        let store = try RingStore(configuration: configuration(directory, capacity: 5_000), logger: quiet)
        #expect(store.statistics.readings == 400)
        try writeWater(store, messages: 100, firstSeq: 1_700)
        let db = try reader(directory)
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v") == 500)
        #expect(try db.scalarInt("SELECT min(seq) FROM readings_v") == 1_300)
        #expect(try db.scalarInt("SELECT max(seq) FROM readings_v") == 1_799)
    }

    @Test func duplicatesAreStoredOnceAndGapsCounted() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
        var batch = IngestBatch()
        let device = DeviceID(vin: vin)
        for seq: UInt32 in [1, 2, 2, 5, 1, 4] {
            batch.append(
                .readings(
                    device: device, ts: 1_767_225_600_000, seq: seq, readings: [Reading(signal: .speed, value: 50)]))
        }
        batch.append(
            .troubleCodes(device: device, ts: 1_767_225_600_001, seq: 6, codes: [TroubleCode(high: 3, low: 1)]))
        batch.append(
            .troubleCodes(device: device, ts: 1_767_225_600_001, seq: 6, codes: [TroubleCode(high: 3, low: 1)]))
        batch.append(.hello(device: device, firmware: "1.4.2", hardware: "obd-x1", model: nil, nextSeq: nil))
        let summary = try store.commit(batch, nowMs: 1_767_225_600_100)
        #expect(summary.readingsStored == 4)
        #expect(summary.duplicatesSkipped == 3)
        let db = try reader(directory)
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v") == 4)
        #expect(try db.scalarInt("SELECT duplicates FROM devices_v") == 3)
        #expect(try db.scalarInt("SELECT seq_gaps FROM devices_v") == 1)
        #expect(try db.scalarText("SELECT fw || ' ' || hw || ' ' || kind FROM devices_v") == "1.4.2 obd-x1 vehicle")
        #expect(try db.scalarText("SELECT group_concat(detail) FROM events_v WHERE type = 'dtc'") == "P0301")
        #expect(try db.scalarInt("SELECT last_seen_ms FROM devices_v") == 1_767_225_600_100)
    }

    @Test func rejectsRingIsBounded() throws {
        let directory = try TemporaryDirectory()
        var config = configuration(directory, capacity: 1_000)
        config.capacityRejects = 100
        let store = try RingStore(configuration: config, logger: quiet)
        var batch = IngestBatch()
        for index in 0..<250 {
            batch.append(
                reject: .init(
                    tsMs: Int64(index), topic: "v1/water/x/level", reason: .notJSON, detail: "at byte 0",
                    payloadHead: Array(repeating: 0x41, count: 1000)))
        }
        try store.commit(batch, nowMs: 0)
        let db = try reader(directory)
        #expect(try db.scalarInt("SELECT count(*) FROM rejects_v") == 100)
        #expect(try db.scalarInt("SELECT min(ts_ms) FROM rejects_v") == 150)
        #expect(try db.scalarInt("SELECT max(length(payload_head)) FROM rejects_v") == 256)
        #expect(try db.scalarText("SELECT DISTINCT reason FROM rejects_v") == "not_json")
    }

    @Test func aFailedCommitLeavesNoTraceAndCanBeRetried() throws {
        let directory = try TemporaryDirectory()
        let store = try RingStore(configuration: configuration(directory, capacity: 100_000), logger: quiet)
        try writeWater(store, messages: 10)
        let pages = try store.database.pragmaInt("page_count")
        try store.database.execute("PRAGMA max_page_count=\(pages + 1)")
        var batch = IngestBatch()
        for seq in UInt32(10)..<5_010 {
            batch.append(
                .readings(
                    device: DeviceID(sensor: sensor), ts: 1_767_225_600_000, seq: seq,
                    readings: [Reading(signal: .waterLevel, value: 1)]))
        }
        #expect(throws: StoreError.self) { try store.commit(batch, nowMs: 0) }
        do {
            try store.commit(batch, nowMs: 0)
        } catch {
            #expect(error.sqliteError?.code.primary == .full)
            #expect(error.description.contains("full"))
        }
        #expect(store.statistics.readings == 10)
        #expect(store.sequenceTracker(for: DeviceID(sensor: sensor))?.highest == 9)
        try store.database.execute("PRAGMA max_page_count=1073741823")
        let summary = try store.commit(batch, nowMs: 0)
        #expect(summary.readingsStored == 5_000)
        #expect(summary.duplicatesSkipped == 0)
        #expect(store.statistics.readings == 5_010)
    }

    @Test func refusesAFileFromANewerGateway() throws {
        let directory = try TemporaryDirectory()
        do { _ = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet) }
        do {
            let db = try Database(path: directory.path + "/store.db")
            try db.execute("PRAGMA user_version=\(Schema.version + 1)")
        }
        #expect(throws: StoreError.self) {
            _ = try RingStore(configuration: configuration(directory, capacity: 1_000), logger: quiet)
        }
    }
}

@Suite struct RingCursorResizeTests {
    @Test func shrinkingThenGrowingCountsOnlyWhatIsKept() {
        let ring = RingCursor(capacity: 1_000, next: 1_700)
        let small = ring.resized(to: 400)
        #expect(small.count == 400)
        #expect(small.oldest == 1_300)
        var large = small.resized(to: 5_000)
        #expect(large.count == 400)
        #expect(large.advance().evicts == false)
        #expect(large.count == 401)
    }
}
