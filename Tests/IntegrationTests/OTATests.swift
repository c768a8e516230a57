import Crypto
import Foundation
import JSON
import OTA
import SQLite
import TestSupport
import Testing

/// OTA end to end: a real mosquitto, gatewayd, gwctl uploading and gwsim vehicles doing every
/// check of the trust model themselves.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct OTATests {
    static let operatorToken = "ota-operator-token"

    /// A broker, an operator key, a gateway trusting it, and helpers for gwctl and gwsim.
    final class Fixture: @unchecked Sendable {
        let scratch: Scratch
        let broker: Broker
        let gateway: GatewayProcess
        let keyPath: String
        let publicKeyHex: String
        var fleets: [ChildProcess] = []

        init(ota: String = "") throws {
            scratch = try Scratch()
            broker = try Broker(scratch: scratch)
            keyPath = scratch.file("operator")
            let keygen = try runTool(try binary("gwctl"), ["ota", "keygen", "--out", keyPath, "--json"], in: scratch)
            #expect(keygen.status == 0, "\(keygen.output)")
            let generated = try JSONParser.parse(Array(keygen.output.utf8))
            publicKeyHex = try #require(generated["public_key"]?.string)
            var info = stat()
            stat(keyPath + ".key", &info)
            #expect(info.st_mode & 0o777 == 0o600, "the private key is created 0600")
            gateway = try GatewayProcess(
                scratch: scratch, brokerPort: broker.port,
                extra: #""ota": {"trusted_keys": ["\#(publicKeyHex)"]\#(ota)},"#,
                http: #", "tokens": [{"name": "ops", "role": "operator", "sha256": "\#(SHA256.hex(Array(OTATests.operatorToken.utf8)))"}]"#
            )
            try gateway.start()
        }

        deinit {
            for fleet in fleets { _ = fleet.stop(signal: SIGKILL) }
        }

        var otaDirectory: String { scratch.file("ota") }

        func gwctl(_ arguments: [String]) throws -> (status: Int32, output: String) {
            try runTool(
                try binary("gwctl"), arguments, in: scratch,
                environment: ["GWCTL_GATEWAY": "http://127.0.0.1:\(gateway.httpPort)", "GWCTL_TOKEN": OTATests.operatorToken])
        }

        /// Starts gwsim OTA vehicles provisioned with `firmware` (version 1.0.0, counter 1).
        @discardableResult
        func fleet(_ count: Int, firmware: String, name: String = "fleet", extra: [String] = []) throws -> ChildProcess {
            let child = try ChildProcess(
                name: "gwsim", executable: try binary("gwsim"),
                arguments: [
                    "--port", String(broker.port), "--ota-vehicles", String(count), "--ota-dir", scratch.file(name),
                    "--ota-trusted-key", publicKeyHex, "--ota-firmware", firmware, "--ota-install-ms", "20",
                ] + extra,
                logPath: scratch.file("\(name)-\(fleets.count).log"))
            fleets.append(child)
            return child
        }

        func get(_ target: String) throws -> JSONValue {
            let response = try APIEndpointTests.get(gateway.httpPort, target, token: OTATests.operatorToken)
            #expect(response.status == 200, "\(target): \(response.text)")
            return try JSONParser.parse(response.body)
        }

        func campaign(_ id: Int) throws -> JSONValue { try get("/v1/ota/campaigns/\(id)") }

        @discardableResult
        func waitForCampaign(_ id: Int, _ states: Set<String>, seconds: Double = 90) throws -> JSONValue {
            var last = JSONValue.null
            try waitFor("campaign \(id) to be \(states.sorted())", seconds: seconds) {
                last = try campaign(id)
                return states.contains(last["state"]?.string ?? "")
            }
            return last
        }

        func waitForVehicles(_ count: Int) throws {
            try waitFor("\(count) vehicles to report their firmware", seconds: 30) {
                (try get("/v1/ota/vehicles")["vehicles"]?.arrayValue?.count ?? 0) >= count
            }
        }

        func installed(vin: String, fleet: String = "fleet") throws -> JSONValue {
            let data = try Data(contentsOf: URL(fileURLWithPath: scratch.file("\(fleet)/\(vin)/installed.json")))
            return try JSONParser.parse(Array(data))
        }

        /// Puts a manifest and a campaign straight into the gateway's database while it is stopped,
        /// as an attacker holding the box could, bypassing every upload check.
        func inject(manifest: SignedManifest, vins: [String], blob: [UInt8]) throws {
            FileManager.default.createFile(atPath: otaDirectory + "/blobs/" + SHA256.hex(blob), contents: Data(blob))
            let db = try Database(path: otaDirectory + "/ota.db")
            let release = manifest.manifest
            let text = manifest.json.serialized().replacingOccurrences(of: "'", with: "''")
            try db.execute(
                """
                INSERT INTO manifests(digest, name, version, release_counter, hardware_id, sha256, length, json, created_ms)
                VALUES ('\(manifest.digest)', '\(release.name)', '\(release.version)', \(release.releaseCounter),
                        '\(release.hardwareID)', '\(release.sha256)', \(release.length), '\(text)', 0);
                INSERT INTO campaigns(manifest_id, hardware_id, targets_all, state, wave, reason, settings, created_ms, updated_ms)
                VALUES (last_insert_rowid(), '\(release.hardwareID)', 0, 'running', 0, NULL, '{"retries":0}', 0, 0);
                """)
            let campaign = db.lastInsertRowID
            for (order, vin) in vins.enumerated() {
                try db.execute(
                    """
                    INSERT INTO campaign_vehicles VALUES (\(campaign), '\(vin)', \(order), 'queued', 0, NULL, 0, 0, 0,
                        NULL, NULL, CAST(strftime('%s','now') AS INTEGER) * 1000, 0)
                    """)
            }
        }
    }

    static func vin(_ index: Int) -> String {
        let number = String(index)
        return "1TGSV" + String(repeating: "0", count: 12 - number.count) + number
    }

    /// A firmware-like image: mostly structured bytes with a random part, deterministic.
    static func image(size: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<size).map { index in
            if index % 64 < 40 { return UInt8(truncatingIfNeeded: index / 64) }
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    /// v2 is v1 with a few changed bytes and an insertion, as two builds differ.
    static func images(in fixture: Fixture, size: Int) throws -> (v1: String, v2: String, new: [UInt8]) {
        let old = image(size: size, seed: 1)
        var new = old
        new.replaceSubrange(1000..<1004, with: Array("v2!!".utf8))
        new.insert(contentsOf: image(size: 3000, seed: 9), at: size / 2)
        let v1 = fixture.scratch.file("v1.bin")
        let v2 = fixture.scratch.file("v2.bin")
        FileManager.default.createFile(atPath: v1, contents: Data(old))
        FileManager.default.createFile(atPath: v2, contents: Data(new))
        return (v1, v2, new)
    }

    @Test func fiftyVehiclesThreeWaves() throws {
        let fixture = try Fixture()
        let (v1, v2, new) = try Self.images(in: fixture, size: 256 * 1024)
        try fixture.fleet(50, firmware: v1)
        try fixture.waitForVehicles(50)
        let push = try fixture.gwctl([
            "ota", "push", v2, "--version", "1.1.0", "--counter", "2", "--hw", "tgu-1", "--key",
            fixture.keyPath + ".key", "--from", v1, "--all", "--waves", "10,50,100",
        ])
        #expect(push.status == 0, "\(push.output)")
        #expect(push.output.contains("campaign 1 created"))
        let campaign = try fixture.waitForCampaign(1, ["completed", "aborted"])
        #expect(campaign["state"] == .string("completed"), "\(campaign)")
        #expect(campaign["counts"]?["installed"] == .int(50))
        #expect(campaign["wave"] == .int(3))
        let vehicles = campaign["vehicles"]?.arrayValue ?? []
        #expect(vehicles.count == 50)
        for vehicle in vehicles {
            #expect(vehicle["state"] == .string("installed"))
            #expect(vehicle["file"] == .string("delta"), "every vehicle ran v1, so each got the delta")
            #expect(vehicle["attempts"] == .int(0))
        }
        // What the vehicles themselves recorded, and what they report to the gateway.
        for index in 1...50 {
            let installed = try fixture.installed(vin: Self.vin(index))
            #expect(installed["counter"] == .int(2))
            #expect(installed["version"] == .string("1.1.0"))
            #expect(installed["sha256"] == .string(SHA256.hex(new)))
        }
        try waitFor("every vehicle to report counter 2") {
            try fixture.get("/v1/ota/vehicles")["vehicles"]?.arrayValue?.allSatisfy { $0["counter"] == .int(2) } == true
        }
        // Waves in order: wave 2 began only after all 5 of wave 1 had installed, wave 3 after 24 of 25.
        let log = fixture.gateway.log.split(separator: "\n")
        let finishedBefore = { (marker: String) -> Int in
            let position = log.firstIndex { $0.contains("event=ota_campaign_state") && $0.contains(marker) } ?? log.count
            return log[..<position].count { $0.contains("event=ota_vehicle_finished") && $0.contains("state=installed") }
        }
        #expect(finishedBefore("wave=2") >= 5)
        #expect(finishedBefore("wave=3") >= 24)
        let status = try fixture.gwctl(["ota", "status", "1"])
        #expect(status.output.contains("completed") && status.output.contains("installed 50"), "\(status.output)")
        let metrics = try APIEndpointTests.get(fixture.gateway.httpPort, "/metrics", token: nil).text
        #expect(metrics.contains("gateway_ota_campaigns{state=\"completed\"} 1"))
        // Every OTA answer is what the OpenAPI document says it is.
        let port = fixture.gateway.httpPort
        let document = try fixture.get("/v1/openapi.json")
        for (target, path) in [
            ("/v1/ota/manifests", "/v1/ota/manifests"), ("/v1/ota/campaigns", "/v1/ota/campaigns"),
            ("/v1/ota/campaigns/1", "/v1/ota/campaigns/{id}"), ("/v1/ota/vehicles", "/v1/ota/vehicles"),
        ] {
            try APIEndpointTests.expectConforms(
                port: port, document: document, target, path, token: OTATests.operatorToken)
        }
        try APIEndpointTests.expectConforms(
            port: port, document: document, "/v1/ota/campaigns/1/pause", "/v1/ota/campaigns/{id}/pause", method: "POST",
            status: 409, token: OTATests.operatorToken)

    }

    /// The reference vehicle answers the offers of `vectors/ota.json` it cannot work on as
    /// ota.md says: `rejected` with the vector's reason when the campaign can be read, nothing
    /// when it cannot (shown by the next offer's answer arriving alone).
    @Test func theReferenceVehicleAnswersMalformedOffersAsTheVectorsSay() async throws {
        let fixture = try Fixture()
        let (v1, _, _) = try Self.images(in: fixture, size: 4096)
        let vin = Self.vin(1)
        let watcher = try Subscriber(port: fixture.broker.port, filter: "v1/ota/\(vin)/status")
        try fixture.fleet(1, firmware: v1)
        _ = try watcher.waitForMessage(topic: "v1/ota/\(vin)/status", containing: #""state":"idle""#)
        let publisher = try Publisher(port: fixture.broker.port)
        let data = try Data(contentsOf: VectorFile.directory.appendingPathComponent("ota.json"))
        let vectors = try JSONParser.parse(Array(data))["messages"]?["offers_invalid"]?.arrayValue ?? []
        #expect(vectors.count >= 10)
        var answered = 1
        for vector in vectors {
            let name = vector["name"]?.string ?? ""
            try await publisher.send("v1/ota/\(vin)/offer", vector["payload"]?.string ?? "")
            guard let reason = vector["status"]?["reason"]?.string else { continue }
            answered += 1
            try waitFor("the answer to \(name)") { watcher.messages().count >= answered }
            let status = try JSONParser.parse(watcher.messages()[answered - 1].payload)
            #expect(status["campaign"] == .int(7), "\(name)")
            #expect(status["state"] == .string("rejected"), "\(name)")
            #expect(status["reason"] == .string(reason), "\(name): \(status)")
        }
        // The unreadable ones last: one more answerable offer, and it is the only answer since.
        try await publisher.send("v1/ota/\(vin)/offer", vectors.first?["payload"]?.string ?? "")
        try waitFor("the marker's answer") { watcher.messages().count >= answered + 1 }
        #expect(watcher.messages().count == answered + 1)
    }

    @Test func hostileGatewayCannotInstallAnything() throws {
        let fixture = try Fixture()
        let (v1, v2, new) = try Self.images(in: fixture, size: 64 * 1024)
        let vins = (1...5).map(Self.vin)
        // Offers wait (retained) for vehicles that are not running yet.
        let push = try fixture.gwctl([
            "ota", "push", v2, "--version", "1.1.0", "--counter", "2", "--hw", "tgu-1", "--key",
            fixture.keyPath + ".key", "--vins", vins.joined(separator: ","), "--retries", "0",
        ])
        #expect(push.status == 0, "\(push.output)")
        // 1. The image on the gateway's disk is altered after upload (same length).
        let blobPath = fixture.otaDirectory + "/blobs/" + SHA256.hex(new)
        var tampered = try Array(Data(contentsOf: URL(fileURLWithPath: blobPath)))
        tampered[tampered.count / 2] ^= 0xFF
        FileManager.default.createFile(atPath: blobPath, contents: Data(tampered))
        try fixture.fleet(5, firmware: v1)
        let first = try fixture.waitForCampaign(1, ["completed", "aborted"])
        for vehicle in first["vehicles"]?.arrayValue ?? [] {
            #expect(vehicle["state"] == .string("rejected"), "\(vehicle)")
            #expect(vehicle["reason"] == .string("hash_mismatch"))
        }

        // 2. A manifest signed by a key the vehicles do not trust, put straight into the database.
        fixture.gateway.stop()
        let rogue = try Ed25519.PrivateKey()
        let evil = Self.image(size: 20_000, seed: 666)
        let now = Int64(Date().timeIntervalSince1970)
        let manifest = SignedManifest.sign(
            ReleaseManifest(
                name: "evil", version: "6.6.6", releaseCounter: 99, hardwareID: "tgu-1", length: UInt64(evil.count),
                sha256: SHA256.hex(evil), targets: .all, created: now, expires: now + 3600),
            with: [rogue])
        try fixture.inject(manifest: manifest, vins: vins, blob: evil)
        try fixture.gateway.start()
        let second = try fixture.waitForCampaign(2, ["completed", "aborted"])
        for vehicle in second["vehicles"]?.arrayValue ?? [] {
            #expect(vehicle["state"] == .string("rejected"), "\(vehicle)")
            #expect(vehicle["reason"] == .string("untrusted_key"))
        }
        // None installed anything: each still runs v1 at counter 1.
        let original = SHA256.hex(try Array(Data(contentsOf: URL(fileURLWithPath: v1))))
        for vin in vins {
            let installed = try fixture.installed(vin: vin)
            #expect(installed["counter"] == .int(1))
            #expect(installed["sha256"] == .string(original))
        }
    }

    /// Vehicles drop their connection at about half of the download, gatewayd restarts mid-way
    /// and one fleet is killed (-9) and restarted: everyone finishes, fetching again at most
    /// what was in flight.
    @Test func transfersResumeOnBothSides() throws {
        // 2 MiB/s for 10 vehicles × 1 MiB: about 5 s, slow enough to interrupt.
        let fixture = try Fixture(ota: #", "max_bytes_per_second": 2097152"#)
        let (v1, v2, _) = try Self.images(in: fixture, size: 1024 * 1024)
        try fixture.fleet(6, firmware: v1, name: "dropping", extra: ["--ota-disconnect-at", "0.5"])
        let rebooting = try fixture.fleet(4, firmware: v1, name: "rebooting", extra: ["--ota-vin-offset", "6"])
        try fixture.waitForVehicles(10)
        // Full images: the delta base is not offered (no --from), 1 MiB = 64 blocks each.
        let push = try fixture.gwctl([
            "ota", "push", v2, "--version", "1.1.0", "--counter", "2", "--hw", "tgu-1", "--key",
            fixture.keyPath + ".key", "--all", "--retries", "0",
        ])
        #expect(push.status == 0, "\(push.output)")
        try waitFor("half of the blocks", seconds: 30) {
            let vehicles = try fixture.campaign(1)["vehicles"]?.arrayValue ?? []
            let done = vehicles.reduce(0) { $0 + Int($1["blocks_done"]?.number ?? 0) }
            return done >= 10 * 65 / 2
        }
        _ = rebooting.stop(signal: SIGKILL)
        fixture.gateway.stop()
        try fixture.gateway.start()
        try fixture.fleet(4, firmware: v1, name: "rebooting", extra: ["--ota-vin-offset", "6"])
        let campaign = try fixture.waitForCampaign(1, ["completed", "aborted"])
        #expect(campaign["counts"]?["installed"] == .int(10), "\(campaign)")
        let dropping = fixture.fleets[0]
        _ = dropping.stop()
        #expect(dropping.log.contains("disconnects=6"), "\(dropping.log)")
        // A vehicle that did not resume would fetch its first half again: 6 × 32 blocks. What may
        // arrive twice is only a block already on its way when the vehicle asked again after 3 s
        // without an answer (the gateway serves a repeated request once): at most the sender's
        // 64 unwritten publishes.
        let duplicates = dropping.log.split(separator: " ").first { $0.hasPrefix("duplicate_blocks=") }
            .flatMap { Int($0.dropFirst("duplicate_blocks=".count)) } ?? -1
        #expect(duplicates >= 0 && duplicates <= 64, "vehicles fetched again what they had: \(dropping.log)")
        // Across the gateway restart the served counter restarts too; what the second gatewayd
        // served is at most the missing blocks plus what was in flight (two requests of 32).
        let metrics = try APIEndpointTests.get(fixture.gateway.httpPort, "/metrics", token: nil).text
        let served = metrics.split(separator: "\n").first { $0.hasPrefix("gateway_ota_blocks_served_total ") }
            .flatMap { Int($0.split(separator: " ")[1]) } ?? -1
        let blocks = Int(ceil(Double(1024 * 1024 + 3000) / 16384))
        #expect(served > 0 && served <= 10 * blocks / 2 + 10 * 64 + 64, "served \(served) blocks after the restart")
    }

    /// gwctl pause stops the transfer (vehicles told, nothing more served), resume carries on,
    /// cancel ends it: vehicles drop their partial files and keep their firmware.
    @Test func operatorPausesResumesAndCancels() async throws {
        let fixture = try Fixture(ota: #", "max_bytes_per_second": 262144"#)
        let (v1, v2, _) = try Self.images(in: fixture, size: 2 * 1024 * 1024)
        try fixture.fleet(3, firmware: v1)
        try fixture.waitForVehicles(3)
        #expect(
            try fixture.gwctl([
                "ota", "push", v2, "--version", "1.1.0", "--counter", "2", "--hw", "tgu-1", "--key",
                fixture.keyPath + ".key", "--all",
            ]).status == 0)
        func served() throws -> Int {
            let metrics = try APIEndpointTests.get(fixture.gateway.httpPort, "/metrics", token: nil).text
            return metrics.split(separator: "\n").first { $0.hasPrefix("gateway_ota_blocks_served_total ") }
                .flatMap { Int($0.split(separator: " ")[1]) } ?? -1
        }
        try waitFor("the transfer to start") { try served() > 10 }
        let paused = try fixture.gwctl(["ota", "pause", "1"])
        #expect(paused.output.contains("campaign 1: paused"), "\(paused.output)")
        // Nothing is served once the pause has answered. A marker shows it: a block request of
        // the paused campaign, sent as a vehicle through the same path, is refused; blocks
        // served stay where they were across two such markers.
        func refused() throws -> Int {
            let metrics = try APIEndpointTests.get(fixture.gateway.httpPort, "/metrics", token: nil).text
            return metrics.split(separator: "\n").first { $0.hasPrefix("gateway_ota_requests_refused_total ") }
                .flatMap { Int($0.split(separator: " ")[1]) } ?? -1
        }
        let marker = try Publisher(port: fixture.broker.port)
        func sendMarker() async throws {
            let before = try refused()
            try await marker.send("v1/ota/\(Self.vin(1))/get", #"{"campaign":1,"file":"delta","first":0,"count":1}"#)
            try waitFor("the marker request to be refused") { try refused() > before }
        }
        try await sendMarker()
        let atPause = try served()
        try await sendMarker()
        #expect(try served() == atPause, "no blocks while paused")
        #expect(try fixture.gwctl(["ota", "pause", "1"]).status == 65, "pausing twice is a conflict")
        #expect(try fixture.gwctl(["ota", "resume", "1"]).output.contains("campaign 1: running"))
        try waitFor("blocks again") { try served() > atPause }
        let canceled = try fixture.gwctl(["ota", "cancel", "1"])
        #expect(canceled.output.contains("campaign 1: canceled"), "\(canceled.output)")
        let campaign = try fixture.campaign(1)
        #expect(campaign["counts"]?["canceled"] == .int(3))
        try waitFor("vehicles to drop their partial downloads") {
            try (1...3).allSatisfy { index in
                try FileManager.default.contentsOfDirectory(atPath: fixture.scratch.file("fleet/\(Self.vin(index))/download"))
                    .isEmpty
            }
        }
        for index in 1...3 { #expect(try fixture.installed(vin: Self.vin(index))["counter"] == .int(1)) }
        let list = try fixture.gwctl(["ota", "list"])
        #expect(list.output.contains("canceled"), "\(list.output)")
    }

    @Test func abortThresholdStopsACampaign() throws {
        let fixture = try Fixture(ota: #", "max_concurrent_transfers": 3"#)
        let (v1, v2, _) = try Self.images(in: fixture, size: 32 * 1024)
        try fixture.fleet(12, firmware: v1, extra: ["--ota-fail-rate", "1"])
        try fixture.waitForVehicles(12)
        let push = try fixture.gwctl([
            "ota", "push", v2, "--version", "1.1.0", "--counter", "2", "--hw", "tgu-1", "--key",
            fixture.keyPath + ".key", "--all", "--retries", "0", "--abort-failure-pct", "20", "--abort-min-finished", "3",
        ])
        #expect(push.status == 0, "\(push.output)")
        let campaign = try fixture.waitForCampaign(1, ["completed", "aborted"])
        #expect(campaign["state"] == .string("aborted"), "\(campaign)")
        #expect((campaign["reason"]?.string ?? "").contains("abort_failure_pct 20"))
        let counts = try #require(campaign["counts"])
        #expect(counts["installed"] == .int(0))
        let failed = Int(counts["failed"]?.number ?? 0)
        #expect(failed >= 3 && failed <= 6, "stopped soon after the threshold: \(failed) failed")
        #expect(Int(counts["canceled"]?.number ?? 0) == 12 - failed)
        // Nothing more is offered or served once aborted.
        let served = try fixture.get("/v1/ota/campaigns/1")["vehicles"]?.arrayValue?.count { $0["state"] == .string("offered") }
        #expect(served == 0)
    }

    @Test func downgradesAndExpiredManifestsAreRefused() throws {
        let fixture = try Fixture()
        let (v1, v2, new) = try Self.images(in: fixture, size: 16 * 1024)
        let vins = (1...3).map(Self.vin)
        let base = [
            "ota", "push", v2, "--version", "1.1.0", "--hw", "tgu-1", "--key", fixture.keyPath + ".key", "--vins",
            vins.joined(separator: ","), "--retries", "0",
        ]
        #expect(try fixture.gwctl(base + ["--counter", "5"]).status == 0)
        // At upload: not above what was distributed for the hardware.
        for counter in ["5", "4"] {
            var other = new
            other[0] ^= 1
            let path = fixture.scratch.file("other-\(counter).bin")
            FileManager.default.createFile(atPath: path, contents: Data(other))
            let refused = try fixture.gwctl([
                "ota", "push", path, "--version", "1.0.9", "--hw", "tgu-1", "--key", fixture.keyPath + ".key", "--vins",
                vins[0], "--counter", counter,
            ])
            #expect(refused.status == 65, "\(refused.output)")
            #expect(refused.output.contains("422 rollback"), "\(refused.output)")
        }
        // At upload: expired (made here: gwctl will not sign one).
        let key = try Ed25519.PrivateKey(pem: String(contentsOfFile: fixture.keyPath + ".key", encoding: .utf8))
        let now = Int64(Date().timeIntervalSince1970)
        var later = new
        later[7] ^= 0x55
        let expired = SignedManifest.sign(
            ReleaseManifest(
                name: "late", version: "1.2.0", releaseCounter: 9, hardwareID: "tgu-1", length: UInt64(later.count),
                sha256: SHA256.hex(later), targets: .all, created: now - 7200, expires: now - 3600),
            with: [key])
        let response = try APIEndpointTests.send(
            fixture.gateway.httpPort, "POST", "/v1/ota/manifests", token: OTATests.operatorToken,
            body: expired.json.serialized())
        #expect(response.status == 422)
        #expect(response.text.contains("\"expired\""), "\(response.text)")

        // The vehicles refuse both too, when a compromised gateway skips its own checks.
        try fixture.fleet(3, firmware: v1)
        try fixture.waitForCampaign(1, ["completed"])
        fixture.gateway.stop()
        let downgrade = SignedManifest.sign(
            ReleaseManifest(
                name: "old", version: "1.0.5", releaseCounter: 4, hardwareID: "tgu-1", length: UInt64(new.count),
                sha256: SHA256.hex(new.reversed()), targets: .all, created: now, expires: now + 3600),
            with: [key])
        try fixture.inject(manifest: downgrade, vins: vins, blob: new.reversed())
        try fixture.inject(manifest: expired, vins: vins, blob: later)
        try fixture.gateway.start()
        let second = try fixture.waitForCampaign(2, ["completed"])
        #expect(second["vehicles"]?.arrayValue?.allSatisfy { $0["reason"] == .string("rollback") } == true, "\(second)")
        let third = try fixture.waitForCampaign(3, ["completed"])
        #expect(third["vehicles"]?.arrayValue?.allSatisfy { $0["reason"] == .string("expired") } == true, "\(third.serialized())")
        for vin in vins { #expect(try fixture.installed(vin: vin)["counter"] == .int(5)) }
    }
}
