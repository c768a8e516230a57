import Aggregation
import Alerts
import JSON
import Privacy
import RingStore
import Telemetry
import Testing

@testable import Upstream

/// A forgotten vehicle upstream: its names over time, the scrub of queued messages, the notice.
@Suite struct UpstreamErasureTests {
    static let vin = VIN("1HGCM82633A004352")!
    static let day: Int64 = 86_400_000
    static let now: Int64 = 1_767_225_600_000
    static let identity = UpstreamIdentity(
        gatewayID: "junction-12", pseudonyms: Pseudonymizer(secret: [UInt8](repeating: 7, count: 32), periodDays: 30))

    /// Every pseudonym a record could have carried, from a period before the first sighting to
    /// one after now, and the notice shaped as the contract's example.
    @Test func theNoticeNamesEveryPeriodAndFollowsTheContract() throws {
        let pseudonyms = try #require(Self.identity.pseudonyms)
        let since = Self.now - 100 * Self.day
        let erasure = UpstreamMessages.erasure(of: Self.vin, sinceMs: since, nowMs: Self.now, identity: Self.identity)
        let body = try JSONParser.parse(erasure.notice.payload)
        let names = body["vehicles"]?.arrayValue?.compactMap { $0.string } ?? []
        #expect(erasure.notice.topic == "erasures" && erasure.notice.priority == .alert)
        #expect(erasure.names == names.count)
        for ts in stride(from: since - 30 * Self.day, through: Self.now + 30 * Self.day, by: Int(Self.day)) {
            #expect(names.contains(pseudonyms.pseudonym(of: Self.vin.value, atMs: ts)), "day \(ts / Self.day)")
        }
        #expect(!String(decoding: erasure.notice.payload, as: UTF8.self).contains(Self.vin.value))
        let examples = try UpstreamContractTests.examples()
        let example = try #require(examples["erasure notice"])
        #expect(UpstreamContractTests.conforms(body, to: example, at: "$").isEmpty)
        // Plain mode: the notice names the VIN itself.
        let plain = UpstreamMessages.erasure(
            of: Self.vin, sinceMs: since, nowMs: Self.now, identity: UpstreamIdentity(gatewayID: "g", pseudonyms: nil))
        #expect(try JSONParser.parse(plain.notice.payload)["vehicles"] == .array([.string(Self.vin.value)]))
    }

    /// What the encoder queued for two vehicles and a gauge, scrubbed of one vehicle: its alert
    /// goes whole, batches lose its items and keep the rest, a batch of only its items goes.
    @Test func queuedMessagesLoseTheVehicleAndKeepTheRest() throws {
        let other = VIN("2FTRX18W1XCA01234")!
        var summary = CommitSummary()
        summary.alerts = [
            StoredAlert(
                alertID: "junction-12-1",
                event: AlertEvent(
                    device: Self.vin.value, type: .dtc, state: .warning, value: 1, tsMs: Self.now, subject: "P0301")),
            StoredAlert(
                alertID: "junction-12-2",
                event: AlertEvent(device: "drain-7", type: .waterLevel, state: .alarm, value: 212, tsMs: Self.now)),
        ]
        let stats = WindowStats(count: 1, sum: 5, min: 5, max: 5, firstTs: Self.now, lastTs: Self.now, last: 5)
        summary.aggregates = [
            AggregateRow(
                device: Self.vin.value, signal: "speed_kmh", windowS: 60, startMs: Self.now, stats: stats, revision: 1,
                isVehicle: true),
            AggregateRow(
                device: other.value, signal: "speed_kmh", windowS: 60, startMs: Self.now, stats: stats, revision: 1,
                isVehicle: true),
            AggregateRow(
                device: "drain-7", signal: "level_cm", windowS: 60, startMs: Self.now, stats: stats, revision: 1),
        ]
        var batch = IngestBatch()
        batch.append(
            .troubleCodes(device: DeviceID(vin: Self.vin), ts: Self.now, seq: 1, codes: [TroubleCode(high: 3, low: 1)]))
        let queued = UpstreamMessages.encode(summary: summary, batch: batch, identity: Self.identity)
        let erasure = UpstreamMessages.erasure(
            of: Self.vin, sinceMs: Self.now, nowMs: Self.now, identity: Self.identity)
        let target = Self.identity.pseudonyms!.pseudonym(of: Self.vin.value, atMs: Self.now)
        var outcomes: [String: [String]] = [:]
        for message in queued {
            let outcome: String
            switch erasure.scrub(message.payload) {
            case .keep: outcome = "keep"
            case .drop: outcome = "drop"
            case .rewrite(let bytes):
                outcome = "rewrite"
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(!text.contains(target))
                let body = try JSONParser.parse(bytes)
                let original = try JSONParser.parse(message.payload)
                #expect(body["batch_id"] == original["batch_id"], "a rewritten batch keeps its id")
                #expect(body["items"]?.arrayValue?.count == 2)
            }
            outcomes[message.topic, default: []].append(outcome)
        }
        #expect(outcomes["alerts"] == ["drop", "keep"])
        #expect(outcomes["aggregates"] == ["rewrite"])
        #expect(outcomes["events"] == ["drop"])
        // Anything that is not the contract's JSON is left alone.
        #expect(erasure.scrub(Array("not json".utf8)) == .keep)
    }
}
