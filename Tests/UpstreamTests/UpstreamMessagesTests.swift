import Advisories
import Foundation
import JSON
import RingStore
import Telemetry
import Testing

@testable import Upstream

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
        let messages = UpstreamMessages.encode(
            summary: CommitSummary(), batch: batch, identity: UpstreamIdentity(gatewayID: "gw", pseudonyms: nil))
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
