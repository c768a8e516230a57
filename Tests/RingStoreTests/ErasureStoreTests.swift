import Foundation
import SQLite
import Telemetry
import Testing

@testable import RingStore

/// `RingStore.forget`: one vehicle goes, in one transaction, and the ring's arithmetic, the
/// other devices and the outbox's figures stay right.
@Suite struct ErasureStoreTests {
    let base: Int64 = 1_767_225_600_000
    let targetVIN = VIN("1HGCM82633A004352")!
    let target = DeviceID(vin: VIN("1HGCM82633A004352")!)
    let other = DeviceID(vin: VIN("2FTRX18W1XCA01234")!)
    let gauge = DeviceID(sensor: SensorID("drain-7")!)

    /// Each message is queued upstream as `{"device": name}`, as the forwarder's alerts are.
    func write(_ store: RingStore, messages: Int, firstSeq: UInt32) throws {
        var batch = IngestBatch()
        for index in 0..<messages {
            let seq = firstSeq + UInt32(index)
            let ts = base + Int64(seq)
            for vehicle in [target, other] {
                batch.append(
                    .readings(
                        device: vehicle, ts: ts, seq: seq,
                        readings: [Reading(signal: .latitude, value: 3.1), Reading(signal: .speed, value: 40)]))
            }
            batch.append(
                .troubleCodes(device: target, ts: ts, seq: seq + 1_000_000, codes: [TroubleCode(high: 0x03, low: 0x01)])
            )
            batch.append(
                .readings(device: gauge, ts: ts, seq: seq, readings: [Reading(signal: .waterLevel, value: 40)]))
        }
        try store.commit(batch, nowMs: base + Int64(firstSeq)) { _, batch in
            batch.items.compactMap { item in
                guard case .readings(let device, _, _, _) = item else { return nil }
                return OutboxMessage(
                    priority: .event, topic: "events", payload: Array(#"{"device":"\#(device.name)"}"#.utf8))
            }
        }
    }

    @Test func forgetsOneVehicleAndKeepsTheRingAndTheOthers() throws {
        let directory = try TemporaryDirectory()
        var settings = configuration(directory, capacity: 1_000)
        settings.aggregation.enabled = false
        settings.outboxGauge = OutboxGauge()
        let store = try RingStore(configuration: settings, logger: quiet)
        // 1 500 readings per vehicle through a ring of 1 000: it has wrapped.
        try write(store, messages: 300, firstSeq: 1)
        try write(store, messages: 300, firstSeq: 301)
        let db = try Database(path: directory.path + "/store.db", options: [.readOnly])
        func count(_ sql: String) throws -> Int64 { try db.scalarInt(sql) ?? -1 }
        let ringBefore = store.statistics
        let otherRows = try count("SELECT count(*) FROM readings_v WHERE device = '\(other.name)'")
        let gaugeRows = try count("SELECT count(*) FROM readings_v WHERE device = '\(gauge.name)'")
        let targetRows = try count("SELECT count(*) FROM readings_v WHERE device = '\(target.name)'")
        #expect(targetRows > 0 && otherRows == targetRows)

        let notice = OutboxMessage(priority: .alert, topic: "erasures", payload: Array(#"{"vehicles":["x"]}"#.utf8))
        var since: Int64 = 0
        let report = try store.forget(targetVIN, nowMs: base + 10_000) { sinceMs in
            since = sinceMs
            return OutboxErasure(
                scrub: { payload in
                    String(decoding: payload, as: UTF8.self).contains(target.name) ? .drop : .keep
                }, notice: notice, names: 1, matches: [target.name])
        }
        #expect(report.known)
        #expect(Int64(report.readings) == targetRows)
        #expect(report.positions == report.readings / 2)
        #expect(report.events == 600)
        #expect(report.outboxDeleted == 600)
        #expect(since <= base + 1)
        // The ring: same size and next row, its rows blanked in place, the others untouched.
        #expect(store.statistics.readings == ringBefore.readings)
        #expect(try count("SELECT next_seqno FROM rings WHERE name = 'readings'") == 3 * 600 * 2 - 600)
        #expect(try count("SELECT count(*) FROM readings") == 1_000)
        #expect(try count("SELECT count(*) FROM readings_v WHERE device = '\(target.name)'") == 0)
        #expect(try count("SELECT count(*) FROM readings_v WHERE device = '\(other.name)'") == otherRows)
        #expect(try count("SELECT count(*) FROM readings_v WHERE device = '\(gauge.name)'") == gaugeRows)
        #expect(try count("SELECT count(*) FROM devices WHERE name = '\(target.name)'") == 0)
        #expect(!store.knows(target) && store.knows(other))
        // The outbox: the target's messages gone, the notice in, the gauge agreeing with the table.
        #expect(try count("SELECT count(*) FROM outbox WHERE topic = 'erasures'") == 1)
        #expect(try count("SELECT count(*) FROM outbox WHERE instr(payload, '\(target.name)') > 0") == 0)
        #expect(settings.outboxGauge!.backlogMessages == (try count("SELECT count(*) FROM outbox")))
        #expect(settings.outboxGauge!.backlogBytes == (try count("SELECT sum(length(payload)) FROM outbox")))
        // The OTA part is pending until the gateway says it is done.
        #expect(try store.pendingErasures() == [targetVIN])
        try store.finishErasure(targetVIN)
        #expect(try store.pendingErasures().isEmpty)
        #expect(try db.scalarText("PRAGMA integrity_check") == "ok")

        // The vehicle comes back: a new device, and the ring goes on over the blanked slots.
        try write(store, messages: 600, firstSeq: 601)
        #expect(try count("SELECT count(*) FROM readings_v WHERE device = '\(target.name)'") > 0)
        #expect(try count("SELECT count(*) FROM readings") == 1_000)
        #expect(store.knows(target))
    }

    @Test func anUnknownVehicleStillLosesItsRejectsAndIsNotAnError() throws {
        let directory = try TemporaryDirectory()
        var settings = configuration(directory, capacity: 100)
        settings.aggregation.enabled = false
        let store = try RingStore(configuration: settings, logger: quiet)
        var batch = IngestBatch()
        batch.append(
            reject: IngestBatch.RejectRecord(
                tsMs: base, topic: "v1/obd/\(target.name)/pids", reason: .notJSON, detail: "x",
                payloadHead: Array("{not json".utf8)))
        batch.append(
            reject: IngestBatch.RejectRecord(
                tsMs: base, topic: "v1/obd/\(other.name)/pids", reason: .notJSON, detail: "x",
                payloadHead: Array("{not json".utf8)))
        try store.commit(batch, nowMs: base)
        let report = try store.forget(targetVIN, nowMs: base + 1)
        #expect(!report.known && report.rejects == 1 && report.readings == 0)
        let db = try Database(path: directory.path + "/store.db", options: [.readOnly])
        #expect(try db.scalarInt("SELECT count(*) FROM rejects") == 1)
    }
}
