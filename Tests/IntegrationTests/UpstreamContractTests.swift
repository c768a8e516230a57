import Foundation
import JSON
import SQLite
import TestSupport
import Testing

/// The consumer side of Firmware-Protocols/upstream.md: the reference consumer
/// (Deploy/city/city-consumer.py) takes the vectors' delivery sequence, reports the outcome the
/// page gives for each delivery, and ends in the page's final state.
@Suite struct UpstreamContractTests {
    @Test func theReferenceConsumerAppliesTheSequenceAsTheContractSays() throws {
        let data = try Data(contentsOf: VectorFile.directory.appendingPathComponent("upstream.json"))
        let sequence = try #require(try JSONParser.parse(Array(data))["sequence"])
        guard case .array(let deliveries)? = sequence["deliveries"] else {
            Issue.record("no deliveries in upstream.json")
            return
        }
        let scratch = try Scratch()
        let input = scratch.file("deliveries.json")
        let list = JSONValue.array(
            deliveries.map { .object(JSONObject([("topic", $0["topic"]!), ("payload", $0["payload"]!)])) })
        try list.serialized().write(toFile: input, atomically: false, encoding: .utf8)
        let database = scratch.file("city.db")
        let (status, output) = try runTool(
            "/usr/bin/python3",
            [CityCluster.root + "/Deploy/city/city-consumer.py", "--apply", input, "--db", database],
            in: scratch)
        #expect(status == 0, "\(output)")
        let outcomes = output.split(separator: "\n").map { $0.split(separator: ":")[0] }.map(String.init)
        let expected = deliveries.compactMap { $0["outcome"]?.string }
        #expect(outcomes == expected, "\(output)")

        let city = try Database(path: database, options: [.readOnly])
        guard case .array(let finals)? = sequence["final_aggregates"] else {
            Issue.record("no final_aggregates")
            return
        }
        let want = Set(
            finals.map { row in
                ["gateway", "device", "signal", "window_s", "start_ms", "count", "revision"]
                    .map { row[$0].map { $0.string ?? $0.serialized() } ?? "" }.joined(separator: "|")
            })
        let have = Set(
            try textRows(
                city,
                "SELECT gateway||'|'||device||'|'||signal||'|'||window_s||'|'||start_ms||'|'||count||'|'||revision FROM aggregates"
            ))
        #expect(have == want)
        let alerts = try textRows(city, "SELECT alert_id FROM alerts ORDER BY alert_id")
        #expect(alerts == sequence["final_alerts"]?.arrayValue?.compactMap(\.string))
        guard case .object(let statuses)? = sequence["final_status"] else {
            Issue.record("no final_status")
            return
        }
        for (gateway, ts) in statuses.members {
            #expect(
                try city.scalarInt("SELECT ts_ms FROM status WHERE gateway = '\(gateway)'")
                    == ts.number.map { Int64($0) })
        }
    }
}
