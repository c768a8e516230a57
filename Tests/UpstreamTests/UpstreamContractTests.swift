import Advisories
import Aggregation
import Alerts
import Foundation
import JSON
import RingStore
import Telemetry
import TestSupport
import Testing

@testable import Upstream

/// The gateway's encoder against Firmware-Protocols/upstream.md: every message it produces has
/// exactly the members of the page's example of that kind, with the same JSON types.
@Suite struct UpstreamContractTests {
    static func examples() throws -> [String: JSONValue] {
        let data = try Data(contentsOf: VectorFile.directory.appendingPathComponent("upstream.json"))
        guard case .array(let examples)? = try JSONParser.parse(Array(data))["examples"] else {
            throw VectorError.malformed("upstream.json")
        }
        var byName: [String: JSONValue] = [:]
        for example in examples { byName[example["name"]?.string ?? ""] = example["payload"] }
        return byName
    }

    /// The JSON type a member must have: an integer in the example must be an integer; a
    /// fractional number may be any number (1.0 is written as 1).
    static func kind(_ value: JSONValue) -> String {
        switch value {
        case .int: "integer"
        case .double: "number"
        case .string: "string"
        case .bool: "boolean"
        case .null: "null"
        case .array: "array"
        case .object: "object"
        }
    }

    static func conforms(_ encoded: JSONValue, to example: JSONValue, at path: String) -> [String] {
        guard case .object(let have) = encoded, case .object(let want) = example else {
            return ["\(path): not an object"]
        }
        var problems: [String] = []
        let haveKeys = Set(have.keys)
        let wantKeys = Set(want.keys)
        for key in wantKeys.subtracting(haveKeys) { problems.append("\(path).\(key): missing") }
        for key in haveKeys.subtracting(wantKeys) { problems.append("\(path).\(key): not in the contract") }
        for key in haveKeys.intersection(wantKeys) {
            let expected = kind(want[key]!)
            let actual = kind(have[key]!)
            if expected == "array" || expected == "object" {
                if actual != expected { problems.append("\(path).\(key): \(actual), not \(expected)") }
            } else if !(actual == expected || (expected == "number" && actual == "integer")) {
                problems.append("\(path).\(key): \(actual), not \(expected)")
            }
        }
        return problems
    }

    /// Each item of an encoded batch against the example item of the same `type` (or the first).
    static func batchConforms(_ encoded: JSONValue, to example: JSONValue) -> [String] {
        var problems = conforms(encoded, to: example, at: "$")
        guard case .array(let items)? = encoded["items"], case .array(let wanted)? = example["items"] else {
            return problems + ["$.items: not an array"]
        }
        for (index, item) in items.enumerated() {
            let model = wanted.first { $0["type"] != nil && $0["type"] == item["type"] } ?? wanted[0]
            problems += conforms(item, to: model, at: "$.items[\(index)]")
        }
        return problems
    }

    @Test func everyEncodedMessageHasTheContractsMembersAndTypes() throws {
        let examples = try Self.examples()
        var summary = CommitSummary()
        summary.aggregates = [
            AggregateRow(
                device: "drain-7", signal: "level_cm", windowS: 60, startMs: 1_767_225_540_000,
                stats: WindowStats(
                    count: 12, sum: 531, min: 41.5, max: 47, firstTs: 1_767_225_541_000, lastTs: 1_767_225_599_000,
                    last: 47), revision: 1)
        ]
        summary.alerts = [
            StoredAlert(
                alertID: "junction-12-41",
                event: AlertEvent(device: "drain-7", type: .waterLevel, state: .alarm, value: 212.5, tsMs: 1)),
            StoredAlert(
                alertID: "junction-12-42",
                event: AlertEvent(
                    device: "1HGCM82633A004352", type: .dtc, state: .warning, value: 1, tsMs: 2, subject: "P0301")),
        ]
        let vin = DeviceID(vin: VIN("1HGCM82633A004352")!)
        var batch = IngestBatch()
        batch.append(.troubleCodes(device: vin, ts: 3, seq: 1, codes: [TroubleCode(high: 0x03, low: 0x01)]))
        batch.append(.hello(device: vin, firmware: "2.4.1", hardware: "tgu-1", model: nil, nextSeq: nil))
        batch.advisories = [
            Advisory(
                advisoryID: "junction-12-drain-7-1-1HGCM82633A004352", vin: "1HGCM82633A004352", sensor: "drain-7",
                state: .alarm, levelCm: 212.5, distanceM: 140.27, tsMs: 4)
        ]
        let messages = UpstreamMessages.encode(
            summary: summary, batch: batch, identity: UpstreamIdentity(gatewayID: "junction-12", pseudonyms: nil))
        #expect(Set(messages.map(\.topic)) == ["alerts", "events", "aggregates"])
        for message in messages {
            let body = try JSONParser.parse(message.payload)
            var problems: [String] = []
            switch message.topic {
            case "aggregates":
                problems = Self.batchConforms(body, to: try #require(examples["aggregates batch"]))
                #expect(body["batch_id"]?.string?.hasPrefix("junction-12-") == true)
            case "events":
                problems = Self.batchConforms(
                    body, to: try #require(examples["events batch: a trouble code, a unit online, an advisory"]))
                guard case .array(let items)? = body["items"] else { continue }
                #expect(items.compactMap { $0["type"]?.string } == ["dtc", "online", "advisory"])
            default:
                let name = body["subject"] == nil ? "alert raised" : "alert with a subject (a trouble code)"
                problems = Self.conforms(body, to: try #require(examples[name]), at: "$")
            }
            #expect(problems.isEmpty, "\(message.topic): \(problems)")
        }
    }

    /// A re-encoded batch gets a new id; the id is what a consumer de-duplicates by, so two
    /// batches must never share one.
    @Test func batchIDsNeverRepeat() {
        let ids = (0..<1000).map { _ in UpstreamMessages.batchID("gw") }
        #expect(Set(ids).count == ids.count)
    }
}
