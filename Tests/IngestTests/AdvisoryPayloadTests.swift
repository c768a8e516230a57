import Advisories
import Foundation
import JSON
import Testing

@testable import Ingest

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
