import Foundation
import JSON
import Settings
import Testing

@testable import Gateway

@Suite struct ConfigurationTests {
    @Test func emptyObjectGivesTheDefaults() throws {
        let (config, problems) = GatewayConfiguration.parse(try JSONParser.parse("{}"))
        #expect(problems.isEmpty)
        #expect(config.store.capacityReadings == 1_000_000)
        #expect(config.store.flushIntervalMs == 50)
        #expect(config.limits.maxPayloadBytes == 16_384)
        #expect(config.clientID == "telemetry-gateway-gw-01")
    }

    @Test func printedDefaultsParseBackToTheSameValues() throws {
        let printed = GatewayConfiguration().json.serialized(pretty: true)
        let (config, problems) = GatewayConfiguration.parse(try JSONParser.parse(printed))
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.json == GatewayConfiguration().json)
    }

    /// The packaged gatewayd.json names a file for the board's identity (see Deploy/debian).
    @Test func gatewayIDFromAFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gwid-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func parse(_ json: String) throws -> (GatewayConfiguration, [ConfigProblem]) {
            GatewayConfiguration.parse(try JSONParser.parse(json))
        }
        try "junction-12 \n# written by the package\n".write(toFile: dir + "/id", atomically: true, encoding: .utf8)
        let (config, problems) = try parse(#"{"gateway_id_file": "\#(dir)/id"}"#)
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.gatewayID == "junction-12")
        #expect(config.clientID == "telemetry-gateway-junction-12")

        let (_, missing) = try parse(#"{"gateway_id_file": "\#(dir)/absent"}"#)
        #expect(missing.map(\.path) == ["gateway_id_file"] && missing[0].message.contains("cannot read"))
        let (_, both) = try parse(#"{"gateway_id": "a", "gateway_id_file": "\#(dir)/id"}"#)
        #expect(both.map(\.path) == ["gateway_id_file"])
        try "../etc\n".write(toFile: dir + "/bad", atomically: true, encoding: .utf8)
        let (_, bad) = try parse(#"{"gateway_id_file": "\#(dir)/bad"}"#)
        #expect(bad.map(\.path) == ["gateway_id"])
    }

    @Test func readsEveryKey() throws {
        let (config, problems) = GatewayConfiguration.parse(
            try JSONParser.parse(
                """
                {"gateway_id": "depot-7", "broker": {"host": "::1", "port": 8883, "client_id": "gw7", "username": "u",
                 "keepalive_s": 60},
                 "store": {"path": "/tmp/x.db", "capacity_readings": 5000, "capacity_events": 200, "capacity_rejects": 300,
                           "flush_interval_ms": 10, "flush_max_readings": 99, "synchronous": "normal"},
                 "limits": {"max_payload_bytes": 1024, "max_future_skew_ms": 0, "inbound_queue": 64},
                 "log": {"level": "debug", "stats_interval_s": 0}}
                """))
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.gatewayID == "depot-7")
        #expect(config.broker.port == 8883)
        #expect(config.clientID == "gw7")
        #expect(config.store.capacityRejects == 300)
        #expect(config.store.synchronous == .normal)
        #expect(config.limits.inboundQueue == 64)
        #expect(config.log.level == "debug")
    }

    /// The store keeps the window and the retention in milliseconds; the file gives seconds
    /// and days, and the printed configuration must give them back as the file had them.
    @Test func keysInFileUnitsAreReadIntoTheModulesUnitsAndPrintedBack() throws {
        let text = """
            {"aggregation": {"window_s": 300, "retention_days": 30, "lateness_ms": 1500},
             "http": {"online_after_s": 90}}
            """
        let (config, problems) = GatewayConfiguration.parse(try JSONParser.parse(text))
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.aggregation.windowMs == 300_000)
        #expect(config.aggregation.retentionMs == 30 * 86_400_000)
        #expect(config.aggregation.latenessMs == 1500)
        #expect(config.http.onlineAfterS == 90)
        let printed = try #require(config.json.object)
        #expect(printed["aggregation"]?["window_s"] == .int(300))
        #expect(printed["aggregation"]?["retention_days"] == .int(30))
        #expect(printed["http"]?["online_after_s"] == .int(90))
        // A window that does not divide an hour falls back to the default, in both units.
        let (fallback, found) = GatewayConfiguration.parse(try JSONParser.parse(#"{"aggregation": {"window_s": 7}}"#))
        #expect(found.map(\.path) == ["aggregation.window_s"])
        #expect(fallback.aggregation.windowMs == 60_000)
    }

    /// `GET /v1/config` is "the running configuration": a gauge's overrides are part of it, and
    /// what is printed reads back to the same settings.
    @Test func perSensorWaterOverridesArePrintedAndReadBack() throws {
        let text = """
            {"alerts": {"water": {"warning_cm": 120, "alarm_cm": 200,
                                  "sensors": {"river-2": {"alarm_cm": 400}, "drain-1": {"dwell_s": 5}}}}}
            """
        let (config, problems) = GatewayConfiguration.parse(try JSONParser.parse(text))
        #expect(problems.isEmpty, "\(problems)")
        let sensors = try #require(config.redactedJSON.object?["alerts"]?["water"]?["sensors"]?.object)
        #expect(sensors.keys == ["drain-1", "river-2"])
        #expect(sensors["river-2"]?["alarm_cm"]?.number == 400)
        #expect(sensors["river-2"]?["warning_cm"]?.number == 120, "an override starts from the gateway-wide values")
        let (again, found) = GatewayConfiguration.parse(try JSONParser.parse(config.json.serialized()))
        #expect(found.isEmpty, "\(found)")
        #expect(again.alerts.waterSensors == config.alerts.waterSensors)
    }

    @Test(arguments: [
        (#"{"broker": {"port": "1883"}}"#, "broker.port: must be an integer"),
        (#"{"broker": {"port": 0}}"#, "broker.port: must be between 1 and 65535"),
        (#"{"store": {"capacity_readings": 10}}"#, "store.capacity_readings: must be between"),
        (#"{"store": {"flush_interval_ms": 1.5}}"#, "store.flush_interval_ms: must be an integer"),
        (#"{"store": {"synchronous": "off"}}"#, "store.synchronous: must be one of full, normal"),
        (#"{"stor": {}}"#, #"stor: unknown key; did you mean "store"?"#),
        (
            #"{"store": {"capacity_reading": 5000}}"#,
            #"store.capacity_reading: unknown key; did you mean "capacity_readings"?"#
        ),
        (#"{"broker": []}"#, "broker: must be an object"),
        (#"{"gateway_id": "a/b"}"#, "gateway_id: must be 1 to 64"),
        (
            #"{"broker": {"tls": {"cert_file": "/etc/hostname", "key_file": "/etc/hostname"}}}"#,
            "broker.tls.ca_file: is required"
        ),
        (#"{"broker": {"password_file": "/nonexistent/pw"}}"#, "broker.password_file: cannot read /nonexistent/pw"),
        (#"[]"#, "(root): must be a JSON object"),
        (#"{"ota": {"fleet": true}}"#, "ota.fleet_tally_keys: must list the fleet depot's public key"),
        (#"{"ota": {"fleet_tally_keys": ["abc"]}}"#, "ota.fleet_tally_keys[0]: must be 64 hex digits"),
    ])
    func reportsProblemsWithTheirKeyPath(text: String, expected: String) throws {
        let (_, problems) = GatewayConfiguration.parse(try JSONParser.parse(text))
        #expect(problems.contains { $0.description.hasPrefix(expected) }, "\(problems)")
    }

    @Test func collectsEveryProblemNotJustTheFirst() throws {
        let (_, problems) = GatewayConfiguration.parse(
            try JSONParser.parse(#"{"broker": {"port": -1}, "store": {"path": ""}, "log": {"level": "x"}, "extra": 1}"#)
        )
        #expect(problems.count == 4, "\(problems)")
    }
}

@Suite struct HTTPConfigurationTests {
    /// `upstream.hosts` lists a cluster's nodes; `upstream.host` stays the one-node form.
    @Test func readsTheUpstreamNodes() throws {
        func parse(_ upstream: String) throws -> (GatewayConfiguration, [ConfigProblem]) {
            GatewayConfiguration.parse(
                try JSONParser.parse(#"{"upstream": {"allow_insecure": true, "port": 8884, \#(upstream)}}"#))
        }
        let (cluster, none) = try parse(#""hosts": ["city-1.example", "10.0.0.2:9883", "[fd00::3]:8883", "[fd00::4]"]"#)
        #expect(none.isEmpty, "\(none)")
        #expect(
            cluster.upstream.nodes.map(\.description) == [
                "city-1.example:8884", "10.0.0.2:9883", "[fd00::3]:8883", "[fd00::4]:8884",
            ])
        let (single, _) = try parse(#""host": "city.example""#)
        #expect(single.upstream.nodes.map(\.description) == ["city.example:8884"])
        #expect(single.upstream.reconnectMaxS == 5)
        let (_, problems) = try parse(
            #""hosts": ["a:0", "b:x", "fd00::1", 7, "c", "c:8884"], "host": "d", "reconnect_max_s": 0"#)
        #expect(
            Set(problems.map(\.path)) == [
                "upstream.hosts", "upstream.reconnect_max_s",
            ], "\(problems)")
        let (_, listed) = try parse(#""hosts": ["a:0", "b:x", "fd00::1", 7, "c", "c:8884"]"#)
        #expect(listed.map(\.path) == (0...3).map { "upstream.hosts[\($0)]" } + ["upstream.hosts[5]"], "\(listed)")
        #expect(listed[3].message.contains("got an integer"), "\(listed[3])")
        #expect(listed[4].message.contains("listed twice"))
    }

    @Test func readsTheHTTPSection() throws {
        let hash = String(repeating: "ab", count: 32)
        let (config, problems) = GatewayConfiguration.parse(
            try JSONParser.parse(
                """
                {"http": {"listen": "[::1]:9443", "open_metrics": false, "cors_origins": ["https://ops.example"],
                          "tokens": [{"name": "grafana", "role": "viewer", "sha256": "\(hash)"},
                                     {"name": "ops", "role": "operator", "sha256": "\(hash.uppercased())"}],
                          "series_cache_ms": 0, "max_series_points": 500}}
                """))
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.http.listen == "[::1]:9443")
        #expect(!config.http.openMetrics && config.http.openHealth)
        #expect(config.http.tokens.map(\.name) == ["grafana", "ops"])
        #expect(config.http.tokens.last?.role == .operator)
        #expect(config.http.seriesCacheMs == 0)
        // The operator's view leaves the hashes out; the printed configuration keeps them.
        #expect(!config.redactedJSON.serialized().contains(hash))
        #expect(config.json.serialized().contains(hash))
    }

    /// A token's `scopes`: `positions` only; anything else is named with its key path.
    @Test func readsTokenScopes() throws {
        let hash = String(repeating: "0", count: 64)
        let (config, problems) = GatewayConfiguration.parse(
            try JSONParser.parse(
                #"{"http": {"tokens": [{"name": "t", "role": "viewer", "sha256": "\#(hash)", "scopes": ["positions"]}, {"name": "v", "role": "viewer", "sha256": "\#(hash)"}]}}"#
            ))
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.http.tokens.map(\.scopes) == [[.positions], []])
        let (_, bad) = GatewayConfiguration.parse(
            try JSONParser.parse(
                #"{"http": {"tokens": [{"name": "t", "role": "viewer", "sha256": "\#(hash)", "scopes": ["tracks", 1]}, {"name": "u", "role": "viewer", "sha256": "\#(hash)", "scopes": "positions"}]}}"#
            ))
        #expect(
            bad.map(\.path) == ["http.tokens[0].scopes[0]", "http.tokens[0].scopes[1]", "http.tokens[1].scopes"],
            "\(bad)")
    }

    @Test func namesEveryProblemInTheHTTPSection() throws {
        let (_, problems) = GatewayConfiguration.parse(
            try JSONParser.parse(
                """
                {"http": {"listn": "x", "listen": "8080", "cors_origins": ["*"], "tls": {"cert_file": "/c"},
                          "tokens": [{"name": "a", "role": "admin", "sha256": "abc"}, {"name": "a", "role": "viewer",
                                     "sha256": "\(String(repeating: "0", count: 64))", "extra": 1}, 7]}}
                """))
        let paths = problems.map(\.path)
        #expect(problems.first { $0.path == "http.listn" }?.message.contains("did you mean \"listen\"") == true)
        for path in [
            "http.listen", "http.cors_origins[0]", "http.tls", "http.tokens[0].role", "http.tokens[0].sha256",
            "http.tokens[1].name", "http.tokens[1].extra", "http.tokens[2]",
        ] {
            #expect(paths.contains(path), "no problem reported at \(path): \(paths)")
        }
    }

    @Test func theProductionSampleParses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("Deploy/gatewayd.json"), encoding: .utf8)
        let (config, problems) = GatewayConfiguration.parse(try JSONParser.parse(text))
        // Its secrets and certificates live on the board, not here: only those may be reported.
        let files = ["broker.password_file", "upstream.tls", "http.tls"]
        #expect(problems.allSatisfy { problem in files.contains { problem.path.hasPrefix($0) } }, "\(problems)")
        #expect(problems.contains { $0.path == "http.tls.cert_file" })
        #expect(config.http.listen == "0.0.0.0:8443")
        #expect(config.http.tlsCertFile != nil)
    }
}
