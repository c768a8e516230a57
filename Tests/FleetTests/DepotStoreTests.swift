import Campaigns
import Crypto
import Fleet
import Foundation
import JSON
import OTA
import Telemetry
import Testing

/// The depot's fleet view and tally from gateways' reports, on a real SQLite file: a vehicle
/// that roamed counts once, an install anywhere wins over a later silence elsewhere, and a
/// report delivered twice is stored once.
@Suite struct DepotStoreTests {
    @Test func aRoamingVehicleCountsOnceAndRedeliveriesAreDropped() throws {
        let directory = NSTemporaryDirectory() + "depot-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try DepotStore(directory: directory)
        let key = try Ed25519.PrivateKey()
        let vins = (1...4).map { VIN("1TGSV00000000000\($0)")! }
        let image: [UInt8] = Array(repeating: 1, count: 100)
        let manifest = SignedManifest.sign(
            ReleaseManifest(
                name: "ecu", version: "1.1.0", releaseCounter: 2, hardwareID: "tgu-1", length: 100,
                sha256: SHA256.hex(image), deltas: [], targets: .vins(vins), created: 1, expires: 9_999_999_999),
            with: [key])
        try store.record(
            release: manifest.digest, name: "ecu", version: "1.1.0", sha256: SHA256.hex(image), length: 100,
            manifest: Array(manifest.json.serialized().utf8), nowMs: 0)
        let vehicleKey = Array(repeating: UInt8(9), count: 32)
        let campaign = FleetDocument(
            campaign: "c", sequence: 1, issued: 0,
            body: .campaign(
                manifest: manifest.digest, settings: JSONObject([("waves", .array([.int(50), .int(100)]))]),
                vehicleKey: vehicleKey)
        ).signed(with: [key])
        try store.record(order: FleetDocumentRecord(campaign), nowMs: 0)
        var id: Int64 = 0
        func report(_ gateway: String, _ vin: VIN, _ state: String, ts: Int64) throws -> Bool {
            id += 1
            let body = JSONObject([
                ("report_id", .int(id)), ("type", .string("vehicle")), ("campaign", .string("c")),
                ("vehicle", .string(FleetDocument.vehicleName(vin.value, key: vehicleKey))), ("state", .string(state)),
                ("ts_ms", .int(ts)),
            ])
            return try store.record(
                report: body, gateway: gateway, text: JSONValue.object(body).serialized(), nowMs: ts)
        }
        // Vehicle 1 starts at gw-a, roams to gw-b and installs there; gw-a later times it out.
        _ = try report("gw-a", vins[0], "downloading", ts: 1)
        _ = try report("gw-b", vins[0], "installed", ts: 2)
        _ = try report("gw-a", vins[0], "timed_out", ts: 3)
        _ = try report("gw-a", vins[1], "failed", ts: 4)
        _ = try report("gw-b", vins[2], "downloading", ts: 5)
        let body = JSONObject([
            ("report_id", .int(1)), ("type", .string("vehicle")), ("campaign", .string("c")),
            ("vehicle", .string("ov-x")), ("state", .string("installed")),
        ])
        #expect(try !store.record(report: body, gateway: "gw-a", text: "", nowMs: 9), "gw-a's report 1 again")
        let plan = try #require(try store.plan(campaign: "c"))
        let tally = try store.tally(campaign: "c", plan: plan)
        #expect(tally.targets == 4)
        #expect(tally.installed == 1 && tally.failures == 1 && tally.finished == 2 && tally.terminal == 2)
        #expect(tally.waves == [.init(size: 2, installed: 1, terminal: 2), .init(size: 4, installed: 1, terminal: 2)])
        let view = try store.fleetStatus(campaign: "c")
        #expect(view["vehicles"] == .int(3))
        #expect(view["by_state"]?["installed"] == .int(1))
        #expect(view["failures"]?.arrayValue?.count == 1)
    }
}
