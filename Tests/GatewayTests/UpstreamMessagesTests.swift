import Advisories
import Foundation
import JSON
import RingStore
import Telemetry
import Testing

@testable import Gateway

/// What the city's cloud receives for a commit, without a broker in between.
@Suite struct UpstreamMessagesTests {
    @Test func advisoriesTravelAsEventsWithTheirIDs() throws {
        var batch = IngestBatch()
        batch.append(.troubleCodes(device: DeviceID(vin: VIN("1HGCM82633A004352")!), ts: 5, seq: 1, codes: []))
        batch.advisories = [
            Advisory(
                advisoryID: "gw-drain-7-10-1HGCM82633A004352", vin: "1HGCM82633A004352", sensor: "drain-7",
                state: .alarm, levelCm: 250, distanceM: 123.456, tsMs: 10)
        ]
        let messages = UpstreamMessages.encode(summary: CommitSummary(), batch: batch, gatewayID: "gw")
        let events = try #require(messages.first { $0.topic == "events" })
        #expect(events.priority == .event)
        let body = try JSONParser.parse(events.payload)
        guard case .array(let items)? = body["items"] else {
            Issue.record("no items in \(body)")
            return
        }
        let advisory = try #require(items.first { $0["type"] == .string("advisory") })
        #expect(advisory["advisory_id"] == .string("gw-drain-7-10-1HGCM82633A004352"))
        #expect(advisory["device"] == .string("1HGCM82633A004352"))
        #expect(advisory["sensor"] == .string("drain-7"))
        #expect(advisory["state"] == .string("alarm"))
        #expect(advisory["distance_m"]?.number == 123.5)
        #expect(body["gateway_id"] == .string("gw"))
    }
}

/// The advisory bytes vehicles receive, against `Firmware-Protocols/vectors/advisory.json`.
@Suite struct AdvisoryPayloadTests {
    @Test func payloadsMatchTheFirmwareVectors() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(
            contentsOf: root.appendingPathComponent("Firmware-Protocols/vectors/advisory.json"), encoding: .utf8)
        guard case .array(let vectors)? = try JSONParser.parse(text)["vectors"] else {
            Issue.record("no vectors")
            return
        }
        #expect(vectors.count >= 2)
        for vector in vectors {
            let a = try #require(vector["advisory"])
            let advisory = Advisory(
                advisoryID: a["advisory_id"]!.string!, vin: a["vin"]!.string!, sensor: a["sensor"]!.string!,
                state: Advisory.State(rawValue: a["state"]!.string!)!, levelCm: a["level_cm"]!.number!,
                distanceM: a["distance_m"]!.number!, tsMs: Int64(a["ts_ms"]!.number!))
            let payload = String(decoding: IngestPipeline.payload(of: advisory), as: UTF8.self)
            #expect(payload == vector["payload"]?.string, "\(vector["name"]?.string ?? "?")")
            #expect("v1/advisory/\(advisory.vin)" == vector["topic"]?.string)
        }
    }
}
