import Foundation
import JSON
import Testing

/// The benchmark's own tools, run small against the real broker and gatewayd so they never rot:
/// every reading published must be counted, in the SQLite file and at a counting subscriber; the
/// chart must come out. Asserts correctness only, never a speed.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct BenchmarkSmokeTests {
    @Test func loadGeneratorCountsEveryReadingAndDrawsTheChart() throws {
        let live = try LiveGateway()
        defer { withExtendedLifetime(live) {} }
        let results = live.scratch.file("results.jsonl")
        let gwbench = try binary("gwbench")
        let common = [
            "--port", String(live.broker.port), "--connections", "2", "--messages", "3000", "--label", "scale",
            "--json-out", results,
        ]
        let baseline = try runTool(gwbench, ["ingest", "--baseline", "1", "--devices", "50"] + common, in: live.scratch)
        #expect(baseline.status == 0, "\(baseline.output)")
        let pid = live.gateway.child.map { String($0.pid) } ?? "0"
        let gateway = try runTool(
            gwbench, ["ingest", "--db", live.gateway.databasePath, "--gateway-pid", pid, "--devices", "100"] + common,
            in: live.scratch)
        #expect(gateway.status == 0, "\(gateway.output)")
        let paced = try runTool(
            gwbench,
            [
                "ingest", "--db", live.gateway.databasePath, "--devices", "100", "--qos", "0", "--rate", "2000",
                "--messages", "1000", "--port", String(live.broker.port), "--label", "paced", "--json-out", results,
            ], in: live.scratch)
        #expect(paced.status == 0, "\(paced.output)")

        let records = try String(contentsOfFile: results, encoding: .utf8).split(separator: "\n").map {
            try JSONParser.parse(Array($0.utf8))
        }
        #expect(records.count == 3)
        for record in records {
            #expect(record["readings_lost"] == .int(0), "\(record.serialized())")
            #expect(record["readings_counted"] == record["readings_published"])
            #expect((record["readings_published"]?.number ?? 0) > 0)
        }
        #expect(records[0]["mode"] == .string("broker_alone"))
        #expect(records[1]["mode"] == .string("gateway"))
        #expect((records[1]["gatewayd_peak_rss_mb"]?.number ?? 0) > 1)
        #expect((records[2]["latency_ms_p99"]?.number ?? -1) >= 0)
        // What gatewayd stored is exactly what was counted.
        let stored = try live.gateway.count("SELECT next_seqno FROM rings WHERE name = 'readings'")
        let counted = Int64(records[1]["readings_counted"]?.number ?? 0) + Int64(records[2]["readings_counted"]?.number ?? 0)
        #expect(stored == counted)

        let chart = live.scratch.file("scaling.svg")
        let drawn = try runTool(gwbench, ["chart", "--in", results, "--out", chart], in: live.scratch)
        #expect(drawn.status == 0, "\(drawn.output)")
        let svg = try String(contentsOfFile: chart, encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("polyline") && svg.hasSuffix("</svg>\n"))
    }
}
