import Campaigns
import Crypto
import Fleet
import Foundation
import JSON
import Logging
import MQTT
import OTA
import SQLite
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Fleet OTA end to end on the clustered city broker: three gateways that nobody dials into,
/// the operator's depot, one push, vehicles of which one roams mid-transfer, and orders forged,
/// unsigned and replayed straight onto the broker. In `CityClusterTests`, which is serialized:
/// two RabbitMQ clusters at once would starve every other test of the 2 cores.
extension CityClusterTests {
    static let fleetToken = "fleet-operator-token"

    struct FleetSite {
        let id: String
        let scratch: Scratch
        let broker: Broker
        let gateway: GatewayProcess
    }

    @Test func onePushReachesEveryGatewayAndRoamingVehiclesResume() throws {
        let scratch = try Scratch()
        let ids = ["fg-1", "fg-2", "fg-3"]
        let cluster = try CityCluster(scratch: scratch, gateways: ids)
        let keygen = try runTool(
            try binary("gwctl"), ["ota", "keygen", "--out", scratch.file("operator"), "--json"], in: scratch)
        let publicKey = try #require(try JSONParser.parse(Array(keygen.output.utf8))["public_key"]?.string)
        // The depot's own key, which signs its tallies.
        let depotKeygen = try runTool(
            try binary("gwctl"), ["ota", "keygen", "--out", scratch.file("depot-tally"), "--json"], in: scratch)
        let depotTallyKey = try #require(try JSONParser.parse(Array(depotKeygen.output.utf8))["public_key"]?.string)
        // Benchmarks/fleet.sh sets a larger image; fg-1's cap keeps the roamer's transfer ~8 s long.
        let imageKiB = ProcessInfo.processInfo.environment["TG_FLEET_IMAGE_KIB"].flatMap { Int($0) } ?? 384
        let image = OTATests.image(size: imageKiB * 1024, seed: 3)
        let v1 = scratch.file("v1.bin")
        let v2 = scratch.file("v2.bin")
        FileManager.default.createFile(atPath: v1, contents: Data(OTATests.image(size: 64 * 1024, seed: 1)))
        FileManager.default.createFile(atPath: v2, contents: Data(image))

        var sites: [FleetSite] = []
        func site(_ id: String, index: Int) throws -> FleetSite {
            let siteScratch = try Scratch()
            let broker = try Broker(scratch: siteScratch)
            // fg-1 hands blocks to vehicles slowly, so that a vehicle can leave it mid-transfer.
            let throttle = index == 0 ? #", "max_bytes_per_second": \#(max(49152, imageKiB * 128))"# : ""
            let gateway = try GatewayProcess(
                scratch: siteScratch, brokerPort: broker.port,
                extra: cluster.upstreamSection(gatewayID: id, first: index % 3)
                    + #""ota": {"trusted_keys": ["\#(publicKey)"], "fleet": true, "fleet_tally_keys": ["\#(depotTallyKey)"]\#(throttle)},"#,
                http:
                    #", "tokens": [{"name": "ops", "role": "operator", "sha256": "\#(SHA256.hex(Array(Self.fleetToken.utf8)))"}]"#,
                gatewayID: id)
            try gateway.start()
            return FleetSite(id: id, scratch: siteScratch, broker: broker, gateway: gateway)
        }
        for (index, id) in ids.enumerated() { sites.append(try site(id, index: index)) }
        let depotDirectory = scratch.file("depot")
        let (depotCert, depotKey) = cluster.certificate("ota-depot")
        let brokerOptions = [
            "--broker", cluster.nodes.map(\.mqtt).joined(separator: ","), "--broker-ca", cluster.caFile,
            "--broker-cert", depotCert, "--broker-key", depotKey, "--depot", depotDirectory,
        ]
        let depot = try ChildProcess(
            name: "depot", executable: try binary("gwctl"),
            arguments: ["fleet", "serve", "--tally-key", scratch.file("depot-tally.key")] + brokerOptions,
            logPath: scratch.file("depot.log"))
        defer { _ = depot.stop() }
        try waitFor("the depot connected", seconds: 30) { depot.log.contains("event=depot_connected") }
        for site in sites {
            try waitFor("\(site.id): fleet link up", seconds: 30) {
                try fleetMetric(site, "gateway_fleet_connected") == 1
            }
        }

        // Vehicles 1-3 at fg-1 (3 roams to fg-2 mid-transfer), 4-5 at fg-2, 6-7 at fg-3.
        var vehicles: [ChildProcess] = []
        func vehicle(_ site: FleetSite, offset: Int, count: Int, flash: String) throws -> ChildProcess {
            let child = try ChildProcess(
                name: "gwsim", executable: try binary("gwsim"),
                arguments: [
                    "--port", String(site.broker.port), "--ota-vehicles", String(count), "--ota-vin-offset",
                    String(offset), "--ota-dir", scratch.file(flash), "--ota-trusted-key", publicKey,
                    "--ota-firmware", v1, "--ota-install-ms", "20",
                ] + (flash == "failing" ? ["--ota-fail-rate", "1"] : []),
                logPath: scratch.file("\(flash)-\(site.id)-\(vehicles.count).log"))
            vehicles.append(child)
            return child
        }
        _ = try vehicle(sites[0], offset: 0, count: 2, flash: "fleet")
        let roamer = try vehicle(sites[0], offset: 2, count: 1, flash: "roamer")
        _ = try vehicle(sites[1], offset: 3, count: 2, flash: "fleet")
        _ = try vehicle(sites[2], offset: 5, count: 2, flash: "fleet")
        defer { for child in vehicles { _ = child.stop(signal: SIGKILL) } }
        for (site, count) in zip(sites, [3, 2, 2]) {
            try waitFor("\(site.id): \(count) vehicles known", seconds: 30) {
                (try fleetGet(site, "/v1/ota/vehicles")["vehicles"]?.arrayValue?.count ?? 0) >= count
            }
        }

        // fg-3 is down (kill -9) when the operator pushes: the broker keeps the announcements in
        // its session, and it fetches and verifies the release once it is back.
        _ = sites[2].gateway.stop(signal: SIGKILL)
        let pushed = Date()
        let vins = (1...7).map(OTATests.vin).joined(separator: ",")
        let push = try runTool(
            try binary("gwctl"),
            [
                "fleet", "push", v2, "--version", "1.1.0", "--counter", "2", "--hw", "tgu-1", "--vins", vins,
                "--key", scratch.file("operator.key"), "--campaign", "bus-ecu-1.1.0", "--waves", "50,100",
                "--success-pct", "50", "--json",
            ] + brokerOptions, in: scratch)
        #expect(push.status == 0, "\(push.output)")
        func verified(_ site: FleetSite, since start: Date) throws -> Double {
            try waitFor("\(site.id): the release fetched and verified", seconds: 120) {
                site.gateway.log.contains("event=fleet_release_verified")
            }
            let line = try #require(
                site.gateway.log.split(separator: "\n").first { $0.contains("event=fleet_release_verified") })
            return try #require(CityClusterTests.timestamp(line)).timeIntervalSince(start)
        }
        let verifiedSeconds = max(try verified(sites[0], since: pushed), try verified(sites[1], since: pushed))
        let restarted = Date()
        try sites[2].gateway.start()
        let afterRestartSeconds = try verified(sites[2], since: restarted)

        // The roamer leaves fg-1 part way through and turns up at fg-2 with the blocks it holds.
        let roamingVIN = OTATests.vin(3)
        var heldAtA = 0
        try waitFor("the roamer part way through at fg-1", seconds: 60) {
            let run = try vehicleRun(sites[0], vin: roamingVIN)
            heldAtA = Int(fleetInteger(run?["blocks_done"]))
            return heldAtA >= 6
        }
        _ = roamer.stop()
        let total = Int(fleetInteger(try vehicleRun(sites[0], vin: roamingVIN)?["blocks_total"]))
        _ = try vehicle(sites[1], offset: 2, count: 1, flash: "roamer")

        // Operator orders, then a forged, an unsigned and a replayed one straight onto the broker.
        let pause = try runTool(
            try binary("gwctl"),
            ["fleet", "pause", "bus-ecu-1.1.0", "--key", scratch.file("operator.key")] + brokerOptions, in: scratch)
        #expect(pause.status == 0, "\(pause.output)")
        let resume = try runTool(
            try binary("gwctl"),
            ["fleet", "resume", "bus-ecu-1.1.0", "--key", scratch.file("operator.key")] + brokerOptions, in: scratch)
        #expect(resume.status == 0, "\(resume.output)")
        let depotDB = try Database(path: depotDirectory + "/depot.db", options: [.readOnly])
        let pauseDocument = try #require(
            try textRows(depotDB, "SELECT document FROM orders WHERE campaign = 'bus-ecu-1.1.0' AND verb = 'pause'")
                .first)
        let stranger = try Ed25519.PrivateKey()
        let forged = FleetDocument(campaign: "bus-ecu-1.1.0", sequence: 90, issued: 0, body: .command(.abort))
            .signed(with: [stranger])
        let unsigned = FleetDocument(campaign: "bus-ecu-1.1.0", sequence: 91, issued: 0, body: .command(.cancel))
        // A tally the depot did not sign, saying the fleet failed: accepted, it would abort everything.
        let forgedTally = TallyMessage(
            campaign: "bus-ecu-1.1.0",
            tally: FleetTally(
                targets: 7, finished: 7, failures: 7, installed: 0, terminal: 7,
                waves: [.init(size: 4, installed: 0, terminal: 4), .init(size: 7, installed: 0, terminal: 7)]),
            tsMs: Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000
        ).signed(with: [stranger])
        let attacker = try fleetBrokerClient(cluster, certificate: "ota-depot")
        defer { attacker.stop() }
        for payload in [
            Array(forged.json.serialized().utf8), Array(unsigned.json.serialized().utf8), Array(pauseDocument.utf8),
        ] {
            try attacker.publish(topic: "city-ota/orders", payload: payload, qos: 1)
        }
        try attacker.publish(topic: "city-ota/tally", payload: forgedTally.bytes, qos: 1)
        for site in sites {
            try waitFor(
                "\(site.id): the forged, unsigned and replayed orders and the forged tally refused", seconds: 30
            ) {
                try fleetMetric(site, "gateway_fleet_refused_total", label: "code=\"untrusted_key\"") == 2
                    && fleetMetric(site, "gateway_fleet_refused_total", label: "code=\"unsigned\"") == 1
                    && fleetMetric(site, "gateway_fleet_refused_total", label: "code=\"replayed\"") == 1
            }
        }

        for site in sites {
            try waitFor("\(site.id): its part of the campaign completed", seconds: 120) {
                let campaigns = try fleetGet(site, "/v1/ota/campaigns")["campaigns"]?.arrayValue ?? []
                return campaigns.first?["state"] == .string("completed")
            }
        }
        let roamed = try #require(try vehicleRun(sites[1], vin: roamingVIN))
        #expect(roamed["state"] == .string("installed"))
        let fetchedAtB = Int(fleetInteger(roamed["fetched_blocks"]))
        #expect(fetchedAtB < total, "the roamer fetched \(fetchedAtB) of \(total) blocks at fg-2: it did not resume")
        let installed = try JSONParser.parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: scratch.file("roamer/\(roamingVIN)/installed.json")))))
        #expect(installed["sha256"] == .string(SHA256.hex(image)))

        // A gateway provisioned after the push: its session did not exist then. The operator
        // announces the campaign again to it; it takes the release and all three orders in sequence.
        try CityCluster.script(["add-gateway", cluster.directory, "fg-4"], scratch: scratch)
        let late = try site("fg-4", index: 3)
        try waitFor("fg-4: fleet link up", seconds: 30) { try fleetMetric(late, "gateway_fleet_connected") == 1 }
        let announce = try runTool(
            try binary("gwctl"), ["fleet", "announce", "bus-ecu-1.1.0", "--to", "fg-4"] + brokerOptions, in: scratch)
        #expect(announce.status == 0, "\(announce.output)")
        _ = try verified(late, since: Date())
        try waitFor("fg-4: the campaign started and both commands applied", seconds: 30) {
            try fleetMetric(late, "gateway_fleet_orders_applied_total") == 3
                && fleetGet(late, "/v1/ota/campaigns")["campaigns"]?.arrayValue?.first?["state"] != nil
        }

        // One view of the fleet: each vehicle once, every gateway with the release, each image
        // fetched once per gateway, the refusals said upstream.
        var view = JSONValue.null
        try waitFor(
            "the depot's fleet view: 7 vehicles installed, the release on all four gateways, refusals reported",
            seconds: 60
        ) {
            let status = try runTool(
                try binary("gwctl"),
                ["ota", "status", "--city", "bus-ecu-1.1.0", "--depot", depotDirectory, "--json"], in: scratch)
            view = try JSONParser.parse(Array(status.output.utf8))
            return view["by_state"]?["installed"] == .int(7) && view["vehicles"] == .int(7)
                && view["without_release"] == .array([])
                && view["gateways"]?.arrayValue?.filter { $0["gateway"] != .string("fg-4") }
                    .allSatisfy { fleetInteger($0["refusals"]) >= 3 } == true
        }
        for gateway in view["gateways"]?.arrayValue ?? [] {
            #expect(gateway["image_bytes_fetched"] == .int(Int64(image.count)), "\(gateway)")
        }
        let table = try runTool(
            try binary("gwctl"), ["ota", "status", "--city", "bus-ecu-1.1.0", "--depot", depotDirectory], in: scratch)
        #expect(table.output.contains("installed 7"), "\(table.output)")
        let abort = try fleetThresholdAbortsEveryPart(
            sites: sites, vehicle: { try vehicle($0, offset: $1, count: $2, flash: $3) }, imageKiB: imageKiB,
            scratch: scratch, brokerOptions: brokerOptions)
        // Each gateway asked for each range of both images once: no range fetched twice.
        let ranges = 2 * ((imageKiB + 1023) / 1024)
        for site in sites {
            #expect(try fleetMetric(site, "gateway_fleet_fetch_requests_total") == Double(ranges), "\(site.id)")
        }
        print(
            "fleet: push of a \(imageKiB) KiB image -> the two gateways up hold the verified release in "
                + "\(String(format: "%.2f", verifiedSeconds)) s (gwctl start to the last one's fleet_release_verified),"
                + " the one that was down \(String(format: "%.2f", afterRestartSeconds)) s after its restart;"
                + " \(image.count) image bytes fetched per gateway over the city link;"
                + " the roamer held \(heldAtA) of \(total) blocks at fg-1 and fetched \(fetchedAtB) at fg-2 (fresh start: \(total));"
                + " second campaign aborted everywhere at the fleet threshold, \(abort) transfer(s) stopped mid-way at fg-1"
        )
        withExtendedLifetime((cluster, sites, depot, late)) {}
    }

    /// A second campaign to vehicles whose installs all fail, two at each gateway: no gateway
    /// alone reaches abort_min_finished 3, the fleet does, and every part aborts, fg-1's slow
    /// transfers included. Returns how many transfers were stopped before their last block.
    private func fleetThresholdAbortsEveryPart(
        sites: [FleetSite], vehicle: (FleetSite, Int, Int, String) throws -> ChildProcess, imageKiB: Int,
        scratch: Scratch,
        brokerOptions: [String]
    ) throws -> Int {
        for (index, site) in sites.enumerated() {
            _ = try vehicle(site, 7 + 2 * index, 2, "failing")
        }
        for (site, count) in zip(sites, [5, 5, 4]) {
            try waitFor("\(site.id): \(count) vehicles known", seconds: 30) {
                (try fleetGet(site, "/v1/ota/vehicles")["vehicles"]?.arrayValue?.count ?? 0) >= count
            }
        }
        let v3 = scratch.file("v3.bin")
        FileManager.default.createFile(atPath: v3, contents: Data(OTATests.image(size: imageKiB * 1024, seed: 5)))
        let push = try runTool(
            try binary("gwctl"),
            [
                "fleet", "push", v3, "--version", "1.2.0", "--counter", "3", "--hw", "tgu-1", "--vins",
                (8...13).map(OTATests.vin).joined(separator: ","), "--key", scratch.file("operator.key"), "--campaign",
                "bus-ecu-1.2.0", "--retries", "0", "--abort-failure-pct", "50", "--abort-min-finished", "3",
            ] + brokerOptions, in: scratch)
        #expect(push.status == 0, "\(push.output)")
        var stopped = 0
        for site in sites {
            try waitFor("\(site.id): the second campaign aborted by the fleet's tally", seconds: 120) {
                let campaign = try fleetGet(site, "/v1/ota/campaigns")["campaigns"]?.arrayValue?.first
                return campaign?["state"] == .string("aborted")
            }
            let campaign = try #require(try fleetGet(site, "/v1/ota/campaigns")["campaigns"]?.arrayValue?.first)
            #expect(campaign["reason"]?.string?.hasPrefix("fleet:") == true, "\(campaign)")
            guard case .int(let id)? = campaign["id"] else { continue }
            for run in try fleetGet(site, "/v1/ota/campaigns/\(id)")["vehicles"]?.arrayValue ?? []
            where run["state"] == .string("canceled")
                && fleetInteger(run["blocks_done"]) < fleetInteger(run["blocks_total"])
            {
                stopped += 1
            }
        }
        // fg-1 sends blocks slowly: its two were still downloading when the fleet crossed the line.
        #expect(stopped >= 1)
        return stopped
    }

    private func fleetGet(_ site: FleetSite, _ target: String) throws -> JSONValue {
        let response = try APIEndpointTests.get(site.gateway.httpPort, target, token: Self.fleetToken)
        #expect(response.status == 200, "\(target): \(response.text)")
        return try JSONParser.parse(response.body)
    }

    private func vehicleRun(_ site: FleetSite, vin: String) throws -> JSONValue? {
        guard let campaign = try fleetGet(site, "/v1/ota/campaigns")["campaigns"]?.arrayValue?.first,
            case .int(let id)? = campaign["id"]
        else { return nil }
        return try fleetGet(site, "/v1/ota/campaigns/\(id)")["vehicles"]?.arrayValue?.first {
            $0["vin"] == .string(vin)
        }
    }

    private func fleetMetric(_ site: FleetSite, _ name: String, label: String? = nil) throws -> Double {
        let text = try APIEndpointTests.get(site.gateway.httpPort, "/metrics", token: nil).text
        let prefix = label.map { "\(name){\($0)} " } ?? "\(name) "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
        return Double(line.dropFirst(prefix.count)) ?? 0
    }

    private func fleetBrokerClient(_ cluster: CityCluster, certificate: String) throws -> MQTTClient {
        var configuration = MQTTClient.Configuration(clientID: "attacker-\(UUID().uuidString.prefix(6))")
        configuration.brokers = [.init(host: "127.0.0.1", port: cluster.nodes[1].mqttPort)]
        configuration.tls = cluster.clientTLS(certificate)
        configuration.cleanSession = true
        let client = try MQTTClient(configuration: configuration, logger: Logger(level: .error))
        client.start()
        try waitFor("the attacker's client to connect") { client.isConnected }
        return client
    }
}

private func fleetInteger(_ value: JSONValue?) -> Int64 {
    if case .int(let number)? = value { return number }
    return 0
}
