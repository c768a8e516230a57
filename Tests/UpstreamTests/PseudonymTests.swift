import Advisories
import Aggregation
import Alerts
import Crypto
import Foundation
import JSON
import Privacy
import RingStore
import Telemetry
import Testing

@testable import Upstream

/// VINs upstream: keyed pseudonyms, stable within a period, different across periods, and no
/// plain VIN in any byte the encoder produces.
@Suite struct PseudonymTests {
    static let secret = [UInt8](repeating: 7, count: 32)
    static let day: Int64 = 86_400_000

    @Test func stableWithinAPeriodAndDifferentAcrossPeriods() {
        let pseudonyms = Pseudonymizer(secret: Self.secret, periodDays: 30)
        let vin = "1HGCM82633A004352"
        let start: Int64 = 30 * Self.day * 700
        let first = pseudonyms.pseudonym(of: vin, atMs: start)
        #expect(first.hasPrefix("pv-") && first.count == 3 + 24)
        #expect(pseudonyms.pseudonym(of: vin, atMs: start + 30 * Self.day - 1) == first)
        #expect(pseudonyms.pseudonym(of: vin, atMs: start + 30 * Self.day) != first)
        #expect(pseudonyms.pseudonym(of: "2HGCM82633A004352", atMs: start) != first)
        // Another board's secret gives another name: boards cannot be linked by pseudonym.
        let other = Pseudonymizer(secret: [UInt8](repeating: 8, count: 32), periodDays: 30)
        #expect(other.pseudonym(of: vin, atMs: start) != first)
        // The documented construction, recomputed from its parts (what a city with the key does).
        let periodKey = HMACSHA256.authenticate(
            Array("telemetry-gateway pseudonym key, period 700".utf8), key: Self.secret)
        #expect(first == "pv-" + Hex.encode(HMACSHA256.authenticate(Array(vin.utf8), key: periodKey).prefix(12)))
    }

    @Test func noPlainVINInAnythingEncoded() throws {
        let vin = "1HGCM82633A004352"
        let now: Int64 = 1_767_225_600_000
        var summary = CommitSummary()
        summary.aggregates = [
            AggregateRow(
                device: vin, signal: "speed_kmh", windowS: 60, startMs: now - 60_000,
                stats: WindowStats(value: 40, ts: now),
                revision: 1, isVehicle: true),
            AggregateRow(
                device: "drain-7", signal: "level_cm", windowS: 60, startMs: now - 60_000,
                stats: WindowStats(value: 40, ts: now), revision: 1),
        ]
        summary.alerts = [
            StoredAlert(
                alertID: "gw-1", event: AlertEvent(device: vin, type: .coolant, state: .alarm, value: 120, tsMs: now)),
            StoredAlert(
                alertID: "gw-2",
                event: AlertEvent(device: "drain-7", type: .waterLevel, state: .alarm, value: 250, tsMs: now)),
        ]
        var batch = IngestBatch()
        let device = DeviceID(vin: VIN(vin)!)
        batch.append(.troubleCodes(device: device, ts: now, seq: 1, codes: [TroubleCode(high: 0x03, low: 0x01)]))
        batch.append(.hello(device: device, firmware: "1", hardware: "h", model: nil, nextSeq: nil))
        batch.advisories = [
            Advisory(
                advisoryID: "gw-drain-7-\(now - 5000)-\(vin)", vin: vin, sensor: "drain-7", state: .alarm, levelCm: 250,
                distanceM: 100, tsMs: now, incidentStartMs: now - 5000),
            Advisory(
                advisoryID: "gw-drain-7-\(now - 5000)-\(vin)-cleared", vin: vin, sensor: "drain-7", state: .cleared,
                levelCm: 90, distanceM: 100, tsMs: now + 90 * Self.day, incidentStartMs: now - 5000),
        ]
        let pseudonyms = Pseudonymizer(secret: Self.secret, periodDays: 30)
        let messages = UpstreamMessages.encode(
            summary: summary, batch: batch, identity: UpstreamIdentity(gatewayID: "gw", pseudonyms: pseudonyms))
        let all = messages.map { String(decoding: $0.payload, as: UTF8.self) }.joined(separator: "\n")
        #expect(!all.contains(vin), "\(all)")
        #expect(all.contains("drain-7"), "gauges keep their names")
        // The incident keeps one name from warning to cleared, even across a period boundary.
        let name = pseudonyms.pseudonym(of: vin, atMs: now - 5000)
        #expect(all.contains("gw-drain-7-\(now - 5000)-\(name)\""))
        #expect(all.contains("gw-drain-7-\(now - 5000)-\(name)-cleared"))
        // Plain, when configured so.
        let plain = UpstreamMessages.encode(
            summary: summary, batch: batch, identity: UpstreamIdentity(gatewayID: "gw", pseudonyms: nil))
        #expect(plain.contains { String(decoding: $0.payload, as: UTF8.self).contains(vin) })
    }

    @Test func theSecretIsMadeOnceAndKept() throws {
        let path = NSTemporaryDirectory() + "pseudonym-\(UUID().uuidString).key"
        defer { unlink(path) }
        let made = try Pseudonymizer.loadOrCreateSecret(at: path)
        #expect(made.count == 32)
        #expect(try Pseudonymizer.loadOrCreateSecret(at: path) == made)
        var info = stat()
        stat(path, &info)
        #expect(info.st_mode & 0o777 == 0o600)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        #expect(throws: Pseudonymizer.SecretError.self) { try Pseudonymizer.loadOrCreateSecret(at: path) }
    }
}
