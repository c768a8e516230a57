import Crypto
import Foundation
import JSON
import Testing
import Version

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The REST API through the real gatewayd, with real clients: raw sockets, URLSession, curl
/// (plain and over TLS) and gwctl.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct APIEndpointTests {
    static let viewerToken = "viewer-token-for-tests"
    static let operatorToken = "operator-token-for-tests"
    /// A viewer granted the `positions` scope.
    static let trackerToken = "tracker-token-for-tests"
    static func tokens() -> String {
        #", "tokens": [{"name": "grafana", "role": "viewer", "sha256": "\#(SHA256.hex(Array(viewerToken.utf8)))"}, "#
            + #"{"name": "ops", "role": "operator", "sha256": "\#(SHA256.hex(Array(operatorToken.utf8)))"}, "#
            + #"{"name": "tracker", "role": "viewer", "scopes": ["positions"], "sha256": "\#(SHA256.hex(Array(trackerToken.utf8)))"}]"#
    }

    /// Sends a GET and returns status and body; `token` nil sends no Authorization.
    static func get(_ port: Int, _ target: String, token: String?, extra: String = "") throws -> RawResponse {
        let auth = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let response = try rawRequest(port: port, "GET \(target) HTTP/1.1\r\nHost: gw\r\n\(auth)\(extra)\r\n")
        return try #require(response, "no response to \(target)")
    }

    /// Any method, with an optional JSON body.
    static func send(_ port: Int, _ method: String, _ target: String, token: String?, body: String = "") throws
        -> RawResponse
    {
        let auth = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        // A request with a method that takes content says how long it is, even when empty.
        let length =
            body.isEmpty
            ? (["POST", "PUT", "PATCH"].contains(method) ? "Content-Length: 0\r\n" : "")
            : "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        let response = try rawRequest(
            port: port, "\(method) \(target) HTTP/1.1\r\nHost: gw\r\n\(auth)\(length)Connection: close\r\n\r\n\(body)")
        return try #require(response, "no response to \(method) \(target)")
    }

    static func json(_ response: RawResponse) throws -> JSONValue {
        try JSONParser.parse(response.body)
    }

    /// Publishes a vehicle and a gauge with 30 minutes of past readings every 10 s.
    static func seed(_ publisher: Publisher, nowMs: Int64) async throws -> [(ts: Int64, level: Double)] {
        let start = nowMs - nowMs % 60_000 - 2 * 3_600_000
        var levels: [(Int64, Double)] = []
        try await publisher.send(
            "v1/obd/1HGCM82633A004352/hello", #"{"ts":\#(nowMs),"fw":"2.1.0","hw":"obd-x1","model":"bus"}"#)
        try await publisher.send(
            "v1/obd/1HGCM82633A004352/pids", #"{"ts":\#(nowMs),"seq":1,"pids":{"0D":"32"}}"#)
        for index in 0..<180 {
            let ts = start + Int64(index) * 10_000
            let level = Double((index * 37) % 250) + 0.5
            levels.append((ts, level))
            try await publisher.send(
                "v1/water/gauge-9/level", #"{"ts":\#(ts),"seq":\#(index + 1),"level_cm":\#(level)}"#)
        }
        return levels
    }

    @Test func authMatrixOnEveryRoute() async throws {
        let live = try LiveGateway(http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await Self.seed(live.publisher, nowMs: now)
        try waitFor("the readings") { try live.gateway.count("SELECT count(*) FROM readings") >= 181 }
        let port = live.gateway.httpPort
        let routes: [(String, String)] = [
            ("/v1/health", "open"), ("/metrics", "open"), ("/v1/devices", "viewer"),
            ("/v1/devices/gauge-9", "viewer"), ("/v1/series?device=gauge-9&signal=level_cm", "viewer"),
            ("/v1/alerts", "viewer"), ("/v1/rejects", "viewer"), ("/v1/openapi.json", "viewer"),
            ("/v1/config", "operator"), ("/v1/map", "viewer"),
        ]
        for (target, access) in routes {
            let none: Int = try Self.get(port, target, token: nil).status
            let wrong: Int = try Self.get(port, target, token: "not-a-token").status
            let viewer: Int = try Self.get(port, target, token: Self.viewerToken).status
            let op: Int = try Self.get(port, target, token: Self.operatorToken).status
            let got: [Int] = access == "open" ? [none, viewer, op] : [none, wrong, viewer, op]
            let expected: [Int] =
                switch access {
                case "open": [200, 200, 200]
                case "viewer": [401, 401, 200, 200]
                default: [401, 401, 403, 200]
                }
            #expect(got == expected, "\(target)")
        }
        // The write routes: operators only.
        let site = #"{"lat": 3.139, "lon": 101.6869, "radius_m": 400}"#
        let writes: [Int] = try [nil, "not-a-token", Self.viewerToken, Self.operatorToken].map {
            try Self.send(port, "PUT", "/v1/sensors/gauge-9/site", token: $0, body: site).status
        }
        #expect(writes == [401, 401, 403, 200])
        // Erasure, the other write: operators only; a sensor id is not a vehicle to forget.
        let forgets: [Int] = try [nil, "not-a-token", Self.viewerToken, Self.operatorToken].map {
            try Self.send(port, "POST", "/v1/devices/1HGCM82633A004352/forget", token: $0).status
        }
        #expect(forgets == [401, 401, 403, 200])
        #expect(try Self.send(port, "POST", "/v1/devices/gauge-9/forget", token: Self.operatorToken).status == 400)
        #expect(try live.gateway.count("SELECT count(*) FROM devices WHERE name = '1HGCM82633A004352'") == 0)
        let refused = try Self.get(port, "/v1/devices", token: nil)
        #expect(refused.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(try Self.json(refused)["error"]?["code"] == .string("unauthorized"))
        let forbidden = try Self.json(try Self.get(port, "/v1/config", token: Self.viewerToken))
        #expect(forbidden["error"]?["message"]?.string?.contains("needs operator") == true)
        // The operator's view of the configuration leaves the token hashes out.
        let config = try Self.get(port, "/v1/config", token: Self.operatorToken)
        #expect(config.text.contains("\"ops\""))
        #expect(!config.text.contains(SHA256.hex(Array(Self.operatorToken.utf8))))

        // With the open routes closed, health and metrics need a viewer too.
        let closed = try LiveGateway(http: Self.tokens() + #", "open_health": false, "open_metrics": false"#)
        defer { withExtendedLifetime(closed) {} }
        for target in ["/v1/health", "/metrics"] {
            #expect(try Self.get(closed.gateway.httpPort, target, token: nil).status == 401)
            #expect(try Self.get(closed.gateway.httpPort, target, token: Self.viewerToken).status == 200)
        }
    }

    @Test func endpointsAnswerWithTheStoredData() async throws {
        let live = try LiveGateway(http: Self.tokens() + #", "cors_origins": ["https://ops.city.example"]"#)
        defer { withExtendedLifetime(live) {} }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let levels = try await Self.seed(live.publisher, nowMs: now)
        try await live.publisher.send("v1/water/gauge-9/level", #"{"ts":"yesterday","seq":999,"level_cm":1}"#)
        try waitFor("the readings and the reject") {
            try live.gateway.count("SELECT count(*) FROM readings") >= 181
                && live.gateway.count("SELECT count(*) FROM rejects") == 1
        }
        let port = live.gateway.httpPort
        let token = Self.viewerToken

        let health = try Self.json(try Self.get(port, "/v1/health", token: nil))
        #expect(health["status"] == .string("ok"))
        #expect(health["broker"]?["connected"] == .bool(true))
        #expect(health["store"]?["readings"] == .int(181))
        #expect(health["headroom"]?["outbox_full_hours"] == .null)

        let devices = try Self.json(try Self.get(port, "/v1/devices?limit=1", token: token))
        guard case .array(let first)? = devices["devices"] else { throw HarnessError.notFound("devices") }
        #expect(first.count == 1)
        #expect(first.first?["id"] == .string("1HGCM82633A004352"))
        #expect(first.first?["fw"] == .string("2.1.0"))
        let cursor = try #require(devices["next_cursor"]?.string)
        let second = try Self.json(try Self.get(port, "/v1/devices?limit=1&cursor=\(cursor)", token: token))
        #expect(second["devices"]?.arrayValue?.first?["id"] == .string("gauge-9"))
        #expect(second["next_cursor"] == .null)
        let water = try Self.json(try Self.get(port, "/v1/devices?kind=water", token: token))
        #expect(water["devices"]?.arrayValue?.count == 1)
        #expect(try Self.get(port, "/v1/devices?cursor=bogus", token: token).status == 400)
        #expect(try Self.get(port, "/v1/devices?limit=0", token: token).status == 400)

        let device = try Self.json(try Self.get(port, "/v1/devices/gauge-9", token: token))
        #expect(device["readings"] == .int(180))
        #expect(device["latest"]?.arrayValue?.first?["value"] == .double(levels.last!.level))
        #expect(try Self.get(port, "/v1/devices/nobody", token: token).status == 404)
        #expect(try Self.get(port, "/v1/devices/%3Cscript%3E", token: token).status == 400)

        // Series: the aggregate path (step 5 min) and the raw path (step 45 s) both match what was sent.
        let from = levels.first!.ts
        let to = levels.last!.ts + 10_000
        for (step, source) in [(300_000, "aggregates"), (45_000, "raw")] {
            let response = try Self.get(
                port, "/v1/series?device=gauge-9&signal=level_cm&from=\(from)&to=\(to)&step=\(step / 1000)s",
                token: token)
            #expect(response.status == 200)
            #expect(response.headers["x-series-source"] == source)
            let points = try #require(try Self.json(response).arrayValue)
            var expected: [Int64: [Double]] = [:]
            for (ts, level) in levels { expected[ts - ts % Int64(step), default: []].append(level) }
            #expect(points.count == expected.count, "step \(step)")
            for point in points {
                guard case .int(let time)? = point["time"], let values = expected[time] else {
                    Issue.record("unexpected bucket \(point)")
                    continue
                }
                #expect(point["count"] == .int(Int64(values.count)))
                #expect(point["min"]?.number == values.min())
                #expect(point["max"]?.number == values.max())
                #expect(abs((point["mean"]?.number ?? 0) - values.reduce(0, +) / Double(values.count)) < 1e-9)
            }
        }
        let rfc = try Self.get(
            port, "/v1/series?device=gauge-9&signal=level_cm&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z",
            token: token)
        #expect(rfc.status == 200)
        let tooMany = try Self.json(
            try Self.get(port, "/v1/series?device=gauge-9&signal=level_cm&from=0&step=1s", token: token))
        #expect(tooMany["error"]?["code"] == .string("too_many_points"))
        let typo = try Self.json(try Self.get(port, "/v1/series?device=gauge-9&signal=levle_cm", token: token))
        #expect(typo["error"]?["message"]?.string?.contains("did you mean level_cm") == true)
        #expect(try Self.get(port, "/v1/series?device=gauge-9&signal=speed_kmh", token: token).status == 400)
        #expect(try Self.get(port, "/v1/series?device=gauge-9&signal=level_cm&stepp=60", token: token).status == 400)

        let rejects = try Self.json(try Self.get(port, "/v1/rejects", token: token))
        #expect(rejects["counts_held"]?["bad_ts"] == .int(1))
        #expect(rejects["recent"]?.arrayValue?.first?["topic"] == .string("v1/water/gauge-9/level"))
        let alerts = try Self.json(try Self.get(port, "/v1/alerts?state=all", token: token))
        #expect(alerts["alerts"]?.arrayValue != nil)

        // A request broken before its method is known is counted under method "none".
        #expect(try rawRequest(port: port, "\u{1}\u{2} nonsense\r\n\r\n")?.status == 400)
        let metrics = try Self.get(port, "/metrics", token: nil)
        #expect(metrics.text.contains(#"method="none",status="400"}"#), "\(metrics.text)")
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        for line in [
            "gateway_readings_ingested_total{kind=\"water\"} 180", "gateway_rejects_total{reason=\"bad_ts\"} 1",
            "gateway_ring_readings 181", "gateway_broker_connected 1", "gateway_flush_batch_readings_bucket",
            "gateway_flush_duration_seconds_count",
            "gateway_http_requests_total{route=\"/v1/series\",method=\"GET\",status=\"200\"}",
            "gateway_http_request_duration_seconds_bucket{route=\"/v1/devices\"", "process_resident_memory_bytes",
            "process_open_fds", "gateway_upstream_backlog_messages 0", "process_cpu_seconds_total ",
            "process_start_time_seconds ", "process_virtual_memory_bytes ", "process_max_fds ",
            "gateway_build_info{version=\"",
        ] {
            #expect(metrics.text.contains(line), "metrics lack \(line)")
        }
        // Base units only (seconds, not minutes), and no empty label values.
        #expect(!metrics.text.contains("minutes"))
        #expect(!metrics.text.contains("=\"\""), "an empty label value")

        // HEAD: the same headers, no body.
        let connection = try RawConnection(port: port)
        connection.send("HEAD /v1/health HTTP/1.1\r\nHost: gw\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n")
        let bytes = String(decoding: connection.readAll(seconds: 2), as: UTF8.self)
        #expect(bytes.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(
            bytes.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "HEAD sent no body before the next response")

        // CORS: a listed origin is echoed, an unlisted one is not; preflight needs no token.
        let allowed = try Self.get(port, "/v1/health", token: nil, extra: "Origin: https://ops.city.example\r\n")
        #expect(allowed.headers["access-control-allow-origin"] == "https://ops.city.example")
        let other = try Self.get(port, "/v1/health", token: nil, extra: "Origin: https://evil.example\r\n")
        #expect(other.headers["access-control-allow-origin"] == nil)
        let preflight = try #require(
            try rawRequest(
                port: port,
                "OPTIONS /v1/devices HTTP/1.1\r\nHost: gw\r\nOrigin: https://ops.city.example\r\n"
                    + "Access-Control-Request-Method: GET\r\n\r\n"))
        #expect(preflight.status == 204)
        #expect(preflight.headers["access-control-allow-headers"]?.contains("Authorization") == true)
    }

    @Test func openAPIDocumentMatchesTheServedRoutes() throws {
        let live = try LiveGateway(http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let port = live.gateway.httpPort
        let document = try Self.json(try Self.get(port, "/v1/openapi.json", token: Self.viewerToken))
        #expect(document["openapi"] == .string("3.1.0"))
        guard case .object(let paths)? = document["paths"] else { throw HarnessError.notFound("paths") }
        #expect(
            Set(paths.keys)
                == [
                    "/v1/health", "/v1/devices", "/v1/devices/{id}", "/v1/devices/{id}/forget", "/v1/series",
                    "/v1/alerts", "/v1/rejects",
                    "/v1/config", "/metrics", "/v1/openapi.json", "/v1/sensors/{id}/site", "/v1/map",
                    "/v1/ota/blobs/{sha256}", "/v1/ota/manifests", "/v1/ota/campaigns", "/v1/ota/campaigns/{id}",
                    "/v1/ota/campaigns/{id}/pause", "/v1/ota/campaigns/{id}/resume", "/v1/ota/campaigns/{id}/cancel",
                    "/v1/ota/vehicles", "/", "/console", "/console/{file}",
                ])
        for (path, item) in paths.members {
            guard case .object(let operations) = item else { continue }
            for (method, operation) in operations.members {
                let concrete = path.replacingOccurrences(of: "{id}", with: "nobody")
                    .replacingOccurrences(of: "{file}", with: "app.js")
                // Every documented query parameter is accepted; one that is not documented is refused.
                var query: [String] = []
                for parameter in operation["parameters"]?.arrayValue ?? [] where parameter["in"] == .string("query") {
                    let name = parameter["name"]?.string ?? ""
                    let value =
                        ["kind": "water", "state": "all", "limit": "5", "signal": "level_cm", "step": "60"][name] ?? "1"
                    query.append("\(name)=\(value)")
                }
                let target = concrete + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
                let body = operation["requestBody"] == nil ? "" : #"{"lat": 3.1, "lon": 101.6, "radius_m": 100}"#
                let response = try Self.send(port, method.uppercased(), target, token: Self.operatorToken, body: body)
                #expect(response.status != 404 || path.contains("{id}") || path == "/v1/series", "\(method) \(target)")
                #expect(response.status != 405, "\(method) \(target)")
                if response.status == 400 {
                    #expect(response.text.contains("unknown query parameter") == false, "\(target): \(response.text)")
                }
                let extra = try Self.send(
                    port, method.uppercased(), concrete + "?undocumented=1", token: Self.operatorToken, body: body)
                #expect(extra.status == 400, "\(path) accepts an undocumented parameter")
                let secured = (operation["security"]?.arrayValue ?? []).isEmpty == false
                let anonymous = try Self.send(port, method.uppercased(), concrete, token: nil, body: body).status
                #expect(secured == (anonymous == 401), "\(path): documented security matches the server")
            }
        }
        #expect(try Self.get(port, "/v1/undocumented", token: Self.operatorToken).status == 404)
    }

    @Test func realClientsURLSessionCurlAndTLS() async throws {
        let scratch = try Scratch()
        let certificates = scratch.file("certs")
        try UpstreamBroker.makeCertificates(in: certificates, gatewayID: "api-gw")
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port,
            http: Self.tokens()
                + #", "tls": {"cert_file": "\#(certificates)/server.crt", "key_file": "\#(certificates)/server.key"}"#)
        try gateway.start()
        let base = "https://127.0.0.1:\(gateway.httpPort)"

        let curl = try runTool(
            "/usr/bin/curl",
            [
                "-sS", "--cacert", "\(certificates)/ca.crt", "-H", "Authorization: Bearer \(Self.viewerToken)",
                "\(base)/v1/devices",
            ],
            in: scratch)
        #expect(curl.status == 0, "\(curl.output)")
        #expect(curl.output.contains("\"devices\":[]"))
        let untrusted = try runTool("/usr/bin/curl", ["-sS", "\(base)/v1/health"], in: scratch)
        #expect(untrusted.status != 0, "curl must refuse a certificate it cannot verify")
        let plain = try rawRequest(port: gateway.httpPort, "GET /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n", seconds: 2)
        #expect(plain == nil, "plain HTTP on the TLS port gets no HTTP answer")
        #expect(gateway.log.contains("event=http_tls_handshake_failed"))
        // gwctl with --cacert uses the project's own client (Foundation's cannot take a CA file).
        let gwctl = try binary("gwctl")
        let listed = try runTool(
            gwctl, ["devices", "--gateway", base, "--token", Self.viewerToken, "--cacert", "\(certificates)/ca.crt"],
            in: scratch)
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("DEVICE"))
        let placed = try runTool(
            gwctl,
            [
                "sensor", "set", "tls-gauge", "--lat", "3.1", "--lon", "101.6", "--radius-m", "250", "--gateway", base,
                "--token", Self.operatorToken, "--cacert", "\(certificates)/ca.crt", "--json",
            ], in: scratch)
        #expect(placed.status == 0, "\(placed.output)")
        #expect(placed.output.contains(#""radius_m":250"#))
        let wrongCA = try runTool(
            gwctl, ["health", "--gateway", base, "--cacert", "\(certificates)/client.crt"], in: scratch)
        #expect(wrongCA.status == 69)
        #expect(wrongCA.output.contains("--cacert"), "\(wrongCA.output)")
        let systemStore = try runTool(gwctl, ["health", "--gateway", base], in: scratch)
        #expect(systemStore.status == 69, "the system store does not know the test CA")
        let metrics = try runTool(
            "/usr/bin/curl", ["-sS", "--cacert", "\(certificates)/ca.crt", "\(base)/metrics"], in: scratch)
        #expect(metrics.output.contains("gateway_certificate_expiry_seconds{cert=\"http\"}"))

        // URLSession against a plain-HTTP gateway (Foundation on Linux has no per-request CA setting).
        let live = try LiveGateway(http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(live.gateway.httpPort)/v1/health")!)
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect(try JSONParser.parse(Array(data))["status"] == .string("ok"))
        request.url = URL(string: "http://127.0.0.1:\(live.gateway.httpPort)/v1/devices")!
        let (_, refused) = try await URLSession.shared.data(for: request)
        #expect((refused as? HTTPURLResponse)?.statusCode == 401)
        request.setValue("Bearer \(Self.viewerToken)", forHTTPHeaderField: "Authorization")
        let (devices, accepted) = try await URLSession.shared.data(for: request)
        #expect((accepted as? HTTPURLResponse)?.statusCode == 200)
        #expect(try JSONParser.parse(Array(devices))["devices"] != nil)
    }

    @Test func gwctlReadsThroughTheAPI() async throws {
        let live = try LiveGateway(http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await Self.seed(live.publisher, nowMs: now)
        try waitFor("the readings") { try live.gateway.count("SELECT count(*) FROM readings") >= 181 }
        let gwctl = try binary("gwctl")
        let scratch = live.scratch
        let environment = [
            "GWCTL_GATEWAY": "http://127.0.0.1:\(live.gateway.httpPort)", "GWCTL_TOKEN": Self.viewerToken,
        ]
        func run(_ arguments: [String], _ env: [String: String]? = nil) throws -> (status: Int32, output: String) {
            try runTool(gwctl, arguments, in: scratch, environment: env ?? environment)
        }
        let health = try run(["health"])
        #expect(health.status == 0)
        #expect(health.output.contains("status       ok"))
        let devices = try run(["devices"])
        #expect(devices.output.contains("DEVICE"))
        #expect(devices.output.contains("gauge-9"))
        let device = try run(["device", "1HGCM82633A004352"])
        #expect(device.output.contains("speed_kmh"))
        let series = try run(["series", "gauge-9", "level_cm", "--from", "now-3h", "--step", "5m"])
        #expect(series.status == 0, "\(series.output)")
        #expect(series.output.contains("buckets from aggregates"))
        #expect(series.output.contains(where: { "▁▂▃▄▅▆▇█".contains($0) }))
        let json = try run(["series", "gauge-9", "level_cm", "--from", "now-3h", "--json"])
        #expect(json.output.hasPrefix("[{\"time\":"))
        #expect(try run(["alerts"]).output.contains("no alerts"))
        #expect(try run(["rejects"]).status == 0)

        let unauthorized = try run(["devices", "--token", "wrong"])
        #expect(unauthorized.status == 77)
        #expect(unauthorized.output.contains("401"))
        let unreachable = try run(["health", "--gateway", "http://127.0.0.1:1"])
        #expect(unreachable.status == 69)
        #expect(unreachable.output.contains("cannot reach the gateway"))
        let typo = try run(["devcies"])
        #expect(typo.status == 64)
        #expect(typo.output.contains("did you mean \"devices\""))
        let token = try run(["token", "new", "--role", "operator", "--name", "ops2"])
        #expect(token.output.contains(#""role":"operator""#))
        #expect(try run(["series", "--help"]).output.contains("--step"))
        // The one write: operators only.
        let place = ["sensor", "set", "gauge-9", "--lat", "3.139", "--lon", "101.6869", "--radius-m", "350"]
        #expect(try run(place).status == 77, "a viewer token may not set sites")
        var operatorEnvironment = environment
        operatorEnvironment["GWCTL_TOKEN"] = Self.operatorToken
        let placed = try run(place, operatorEnvironment)
        #expect(placed.status == 0, "\(placed.output)")
        #expect(
            try live.gateway.count(
                "SELECT count(*) FROM sensor_sites_v WHERE sensor = 'gauge-9' AND radius_m = 350 AND source = 'api'")
                == 1)
    }
}

extension APIEndpointTests {
    /// Every API URL in the Grafana dashboard answers, and every metric it plots is exported.
    @Test func grafanaDashboardUsesServedRoutesAndMetrics() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(
            contentsOf: root.appendingPathComponent("Deploy/grafana/telemetry-gateway.json"), encoding: .utf8)
        let dashboard = try JSONParser.parse(text)
        var urls: [String] = []
        var expressions: [String] = []
        func walk(_ value: JSONValue) {
            switch value {
            case .object(let object):
                for (key, member) in object.members {
                    if key == "url", case .string(let url) = member { urls.append(url) }
                    if key == "expr", case .string(let expr) = member { expressions.append(expr) }
                    walk(member)
                }
            case .array(let values): values.forEach(walk)
            default: break
            }
        }
        walk(dashboard)
        #expect(urls.count >= 5)
        #expect(expressions.count >= 10)

        #expect(!text.contains("$step"), "the step comes from the panel, not a fixed list")
        #expect(
            !text.contains("\"value\": 150") && !text.contains("\"value\": 250"), "thresholds come from the gateway")

        let live = try LiveGateway(
            extra: #""alerts": {"water": {"sensors": {"gauge-9": {"warning_cm": 80, "alarm_cm": 120}}}},"#,
            http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await Self.seed(live.publisher, nowMs: now)
        try waitFor("the readings") { try live.gateway.count("SELECT count(*) FROM readings") >= 181 }
        let port = live.gateway.httpPort
        // Grafana's $__interval for each time picker range, as Grafana computes it from the
        // panel's maxDataPoints and minimum interval: every range answers, from the aggregates.
        let hour: Int64 = 3_600_000
        for range in [hour, 6 * hour, 24 * hour, 7 * 24 * hour, 30 * 24 * hour, 90 * 24 * hour] {
            let intervalMs = max(Grafana.roundInterval(range / 500), 60_000)
            for url in urls {
                let concrete = url.replacingOccurrences(of: "$sensor", with: "gauge-9")
                    .replacingOccurrences(of: "$vehicle", with: "1HGCM82633A004352")
                    .replacingOccurrences(of: "$signal", with: "speed_kmh")
                    .replacingOccurrences(of: "${__from}", with: String(now - range))
                    .replacingOccurrences(of: "${__to}", with: String(now))
                    .replacingOccurrences(of: "${__interval}", with: Grafana.secondsToHms(intervalMs / 1000))
                let response = try Self.get(port, concrete, token: Self.viewerToken)
                #expect(response.status == 200, "\(url) over \(range / hour) h: \(response.text)")
                if url.hasPrefix("/v1/series") {
                    #expect(response.headers["x-series-source"] == "aggregates", "\(url) over \(range / hour) h")
                }
            }
        }
        let thresholds = try Self.json(try Self.get(port, "/v1/devices/gauge-9", token: Self.viewerToken))["thresholds"]
        #expect(thresholds?["warning_cm"]?.number == 80)
        #expect(thresholds?["alarm_cm"]?.number == 120)
        let metrics = try Self.get(port, "/metrics", token: nil).text
        let pattern = try NSRegularExpression(pattern: "\\b(gateway|process)_[a-z_]+")
        for expr in expressions {
            for match in pattern.matches(in: expr, range: NSRange(expr.startIndex..., in: expr)) {
                var name = String(expr[Range(match.range, in: expr)!])
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                    name.removeLast(suffix.count)
                }
                #expect(metrics.contains("# TYPE \(name) "), "the dashboard plots \(name), which /metrics lacks")
            }
        }
    }
}

/// What Grafana does with a panel's interval (public/app/core/utils/kbn.ts and rangeutil.ts).
enum Grafana {
    static func roundInterval(_ ms: Int64) -> Int64 {
        let table: [(below: Int64, value: Int64)] = [
            (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000), (3_500, 2_000),
            (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000), (45_000, 30_000),
            (90_000, 60_000), (210_000, 120_000), (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000),
            (1_500_000, 1_200_000), (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
            (16_200_000, 10_800_000), (32_400_000, 21_600_000), (86_400_000, 43_200_000),
            (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
        ]
        return table.first { ms < $0.below }?.value ?? 31_536_000_000
    }

    static func secondsToHms(_ seconds: Int64) -> String {
        if seconds / 31_536_000 > 0 { return "\(seconds / 31_536_000)y" }
        if seconds % 31_536_000 / 86_400 > 0 { return "\(seconds % 31_536_000 / 86_400)d" }
        if seconds % 86_400 / 3_600 > 0 { return "\(seconds % 86_400 / 3_600)h" }
        if seconds % 3_600 / 60 > 0 { return "\(seconds % 3_600 / 60)m" }
        return "\(seconds % 60)s"
    }
}

extension APIEndpointTests {
    /// The response schema the document gives `path` for `method` and `status`.
    static func documentedSchema(
        _ document: JSONValue, _ path: String, _ method: String = "get", _ status: String = "200"
    )
        throws -> JSONValue
    {
        let content = try #require(document["paths"]?[path]?[method]?["responses"]?[status]?["content"])
        return try #require(content.object?.members.first?.value["schema"], "\(path) \(status)")
    }

    /// A real response of `target` conforms to what the document says of `path`, and the
    /// schema leaves no object untyped.
    static func expectConforms(
        port: Int, document: JSONValue, _ target: String, _ path: String, method: String = "GET", status: Int = 200,
        token: String = viewerToken, body: String = ""
    ) throws {
        let response = try send(port, method, target, token: token, body: body)
        #expect(response.status == status, "\(target): \(response.text)")
        let schema = try documentedSchema(document, path, method.lowercased(), String(status))
        let problems = SchemaCheck(document: document).problems(try JSONParser.parse(Array(response.text.utf8)), schema)
        #expect(problems.isEmpty, "\(target): \(problems.joined(separator: "; "))")
        #expect(untypedObjects(schema).isEmpty, "\(path): untyped objects \(untypedObjects(schema))")
    }

    /// Paths in a schema to objects that say nothing of their members (what a generated
    /// client can only hand over as a dictionary).
    static func untypedObjects(_ schema: JSONValue, at path: String = "$") -> [String] {
        guard case .object(let members) = schema else { return [] }
        var found: [String] = []
        if members["type"] == .string("object"), members["properties"] == nil, members["additionalProperties"] == nil {
            found.append(path)
        }
        for (key, value) in members.members {
            if case .array(let items) = value {
                for (index, item) in items.enumerated() {
                    found += untypedObjects(item, at: "\(path).\(key)[\(index)]")
                }
            } else {
                found += untypedObjects(value, at: "\(path).\(key)")
            }
        }
        return found
    }

    /// The OpenAPI document is complete: real responses (health when the broker is down
    /// included) conform to the schemas documented for their status, every documented bound
    /// and pattern is what the server enforces, and nothing the server sends is undocumented.
    @Test func responsesConformToTheDocumentedSchemas() async throws {
        let live = try LiveGateway(http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await Self.seed(live.publisher, nowMs: now)
        try await live.publisher.send(
            "v1/obd/1HGCM82633A004352/gps", #"{"ts":\#(now),"seq":2,"lat":3.14,"lon":101.69,"speed_kmh":20}"#)
        try await live.publisher.send("v1/water/gauge-9/level", #"{"ts":"yesterday","seq":999,"level_cm":1}"#)
        try waitFor("the readings") { try live.gateway.count("SELECT count(*) FROM readings") >= 184 }
        let port = live.gateway.httpPort
        #expect(
            try Self.send(
                port, "PUT", "/v1/sensors/gauge-9/site", token: Self.operatorToken,
                body: #"{"lat": 3.1390, "lon": 101.6869, "radius_m": 500}"#
            ).status == 200)
        let document = try Self.json(try Self.get(port, "/v1/openapi.json", token: Self.viewerToken))
        let check = SchemaCheck(document: document)
        func expectConforms(_ target: String, _ path: String, status: Int = 200) throws {
            try Self.expectConforms(port: port, document: document, target, path, status: status)
        }
        try expectConforms("/v1/health", "/v1/health")
        try expectConforms("/v1/devices", "/v1/devices")
        try expectConforms("/v1/devices/gauge-9", "/v1/devices/{id}")
        try expectConforms("/v1/devices/1HGCM82633A004352", "/v1/devices/{id}")
        try expectConforms("/v1/series?device=gauge-9&signal=level_cm&from=now-3h", "/v1/series")
        try expectConforms("/v1/alerts?state=all", "/v1/alerts")
        try expectConforms("/v1/rejects", "/v1/rejects")
        try Self.expectConforms(port: port, document: document, "/v1/map", "/v1/map", token: Self.trackerToken)
        try Self.expectConforms(
            port: port, document: document, "/v1/devices/1HGCM82633A004352", "/v1/devices/{id}",
            token: Self.trackerToken)
        try expectConforms("/v1/devices/nobody", "/v1/devices/{id}", status: 404)
        try Self.expectConforms(
            port: port, document: document, "/v1/sensors/gauge-9/site", "/v1/sensors/{id}/site", method: "PUT",
            token: Self.operatorToken, body: #"{"lat": 3.1390, "lon": 101.6869, "radius_m": 400}"#)
        try Self.expectConforms(port: port, document: document, "/v1/config", "/v1/config", token: Self.operatorToken)

        // Documented bounds and patterns are the server's: the edge is taken, one past refused.
        for (path, item) in document["paths"]?.object?.members ?? [] {
            guard let get = item["get"] else { continue }
            for parameter in get["parameters"]?.arrayValue ?? [] where parameter["in"] == .string("query") {
                guard let name = parameter["name"]?.string, let maximum = parameter["schema"]?["maximum"]?.number,
                    let minimum = parameter["schema"]?["minimum"]?.number
                else { continue }
                let base = path == "/v1/series" ? "\(path)?device=gauge-9&signal=level_cm&" : "\(path)?"
                for (value, status) in [(maximum, 200), (maximum + 1, 400), (minimum, 200), (minimum - 1, 400)] {
                    let target = base + "\(name)=\(Int64(value))"
                    #expect(try Self.get(port, target, token: Self.viewerToken).status == status, "\(target)")
                }
            }
        }
        let idSchema = try #require(document["paths"]?["/v1/devices/{id}"]?["get"]?["parameters"]?.arrayValue?.first)
        for id in ["gauge-9", "a..b", "-lead", String(repeating: "x", count: 65)] {
            let documented = check.problems(.string(id), idSchema["schema"] ?? .null).isEmpty
            let status = try Self.get(port, "/v1/devices/\(id)", token: Self.viewerToken).status
            #expect(documented == (status != 400), "\(id): documented \(documented), served \(status)")
        }

        // The broker goes away: health answers 503 with the documented body.
        #expect(live.broker.child.stop() == 0)
        try waitFor("health to say down") {
            try Self.get(port, "/v1/health", token: nil).status == 503
        }
        try expectConforms("/v1/health", "/v1/health", status: 503)
    }
}

extension APIEndpointTests {
    /// gwctl as people use it: options on either side of the command, --version, every
    /// command's --help, usage errors that show that command's usage, health while the broker
    /// is down, columns that never touch, a malformed URL called that, rejects since creation.
    @Test func gwctlAsPeopleTypeIt() async throws {
        let live = try LiveGateway(store: #", "capacity_rejects": 100"#, http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let gwctl = try binary("gwctl")
        let scratch = live.scratch
        let environment = [
            "GWCTL_GATEWAY": "http://127.0.0.1:\(live.gateway.httpPort)", "GWCTL_TOKEN": Self.viewerToken,
        ]
        func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
            try runTool(gwctl, arguments, in: scratch, environment: environment)
        }
        let before = try run(["--json", "health"])
        #expect(before.status == 0, "\(before.output)")
        #expect(try JSONParser.parse(Array(before.output.utf8))["status"] == .string("ok"))
        #expect(try run(["--token", Self.viewerToken, "devices", "--json"]).status == 0)
        let version = try run(["--version"])
        #expect(version.status == 0 && version.output == "gwctl \(GatewayVersion.current)\n", "\(version.output)")
        let daemon = try runTool(try binary("gatewayd"), ["--version"], in: scratch)
        #expect(daemon.status == 0 && daemon.output.hasPrefix("gatewayd \(GatewayVersion.current)"))

        for command in [
            "health", "devices", "device", "series", "alerts", "rejects", "map", "token", "sensor", "ota keygen",
            "ota sign", "ota push", "ota status", "ota list", "ota pause", "ota resume", "ota cancel", "ota vehicles",
            "device add", "device remove", "device list", "stats", "watch",
        ] {
            let help = try run(command.split(separator: " ").map(String.init) + ["--help"])
            #expect(help.status == 0, "\(command) --help: \(help.output)")
            #expect(help.output.hasPrefix("usage: gwctl \(command)"), "\(command) --help: \(help.output)")
        }
        for group in [["ota"], ["ota", "--help"], ["help", "ota"]] {
            let help = try run(group)
            #expect(help.status == 0, "\(group): \(help.output)")
            #expect(help.output.hasPrefix("usage: gwctl ota COMMAND") && help.output.contains("ota push"))
        }
        let usage = try run(["series", "gauge-9"])
        #expect(usage.status == 64)
        #expect(usage.output.contains("usage: gwctl series DEVICE SIGNAL"), "\(usage.output)")
        #expect(!usage.output.contains("commands:"), "the whole list instead of the command's usage")

        let malformed = try runTool(gwctl, ["health", "--gateway", "localhost:8080"], in: scratch)
        #expect(malformed.status == 64)
        #expect(malformed.output.contains("is not a usable URL"), "\(malformed.output)")
        #expect(!malformed.output.contains("is gatewayd running"))

        // Long ids keep a gap before the next column.
        let passwd = scratch.file("devices.passwd")
        let longID = "drain-sensor-with-a-long-name-0042"
        try "\(longID):$7$x\n1HGCM82633A004352:$7$y\n".write(toFile: passwd, atomically: true, encoding: .utf8)
        let listed = try run(["device", "list", "--passwd", passwd, "--acl", passwd + ".acl", "--broker-pid", "none"])
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("\(longID)  water"), "\(listed.output)")

        // Rejects since the store was created, not the ring's capacity (100 here).
        try live.publisher.stream(count: 130) { index in
            ("v1/water/gauge-\(index % 7)/level", #"{"ts":"late","seq":\#(index + 1),"level_cm":1}"#)
        }
        try waitFor("the rejects") {
            try live.gateway.count("SELECT next_seqno FROM rings WHERE name = 'rejects'") == 130
        }
        let stats = try run(["stats", "--db", live.gateway.databasePath])
        #expect(
            stats.output.contains("rejects      130 since the store was created; the newest 100 held"),
            "\(stats.output)")

        // The broker goes away: health shows the table with why, and exits 2 (down).
        #expect(live.broker.child.stop() == 0)
        try waitFor("health to say down") {
            try Self.get(live.gateway.httpPort, "/v1/health", token: nil).status == 503
        }
        let down = try run(["health"])
        #expect(down.status == 2, "\(down.output)")
        #expect(down.output.contains("status       DOWN"), "\(down.output)")
        #expect(down.output.contains("cannot reach its MQTT broker"))
        #expect(down.output.contains("broker       DISCONNECTED"))
        #expect(!down.output.contains("503"), "\(down.output)")
    }
}

extension APIEndpointTests {
    /// promtool, from Debian's prometheus package: on PATH, or unpacked by `.ci/test.sh`.
    static let promtool: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates: [String?] = [
            ProcessInfo.processInfo.environment["PROMTOOL"], "/usr/bin/promtool",
            root.appendingPathComponent(".build/tools/promtool/usr/bin/promtool").path,
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Prometheus's own linter passes the whole exposition (names, units, suffixes, help), with
    /// every family present: forecasts, HTTP requests (a broken one too), OTA, process.
    @Test(.enabled(if: promtool != nil || ProcessInfo.processInfo.environment["CI"] != nil, "needs promtool"))
    func metricsPassPromtool() async throws {
        let promtool = try #require(Self.promtool, "CI runs this check: .ci/test.sh unpacks promtool")
        let live = try LiveGateway(http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await Self.seed(live.publisher, nowMs: now)
        for minute in 0..<12 {
            try await live.publisher.send(
                "v1/water/rising-1/level",
                #"{"ts":\#(now - Int64(11 - minute) * 60_000),"seq":\#(minute + 1),"level_cm":\#(20 + 5 * minute)}"#)
        }
        let port = live.gateway.httpPort
        try waitFor("a rising forecast") {
            try Self.get(port, "/metrics", token: nil).text.contains(
                "gateway_forecast_seconds_to_alarm{sensor=\"rising-1\"}")
        }
        _ = try rawRequest(port: port, "\u{1} nonsense\r\n\r\n")
        _ = try Self.get(port, "/v1/devices", token: Self.viewerToken)
        let file = live.scratch.file("metrics.txt")
        try Self.get(port, "/metrics", token: nil).text.write(toFile: file, atomically: true, encoding: .utf8)
        let check = try runTool("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, file], in: live.scratch)
        #expect(check.status == 0, "promtool check metrics:\n\(check.output)")
        #expect(check.output.isEmpty, "promtool check metrics:\n\(check.output)")
    }
}

extension APIEndpointTests {
    /// Whether python3 has openapi-spec-validator (pip's; Debian 12 does not package it).
    static let hasSpecValidator: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import openapi_spec_validator"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// The served document is valid OpenAPI 3.1 by an independent validator, where one is installed.
    @Test(.enabled(if: hasSpecValidator, "needs python3 -m pip install openapi-spec-validator"))
    func documentPassesAnIndependentOpenAPIValidator() throws {
        let live = try LiveGateway(http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let file = live.scratch.file("openapi.json")
        try Self.get(live.gateway.httpPort, "/v1/openapi.json", token: Self.viewerToken).text
            .write(toFile: file, atomically: true, encoding: .utf8)
        let check = try runTool(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1])))",
                file,
            ], in: live.scratch)
        #expect(check.status == 0, "\(check.output)")
    }

    /// Individual positions only for tokens with the `positions` scope, whatever the role: the
    /// map's vehicles, the latest position in a device's detail, and position series.
    @Test func positionsNeedTheirScope() async throws {
        let live = try LiveGateway(http: Self.tokens())
        defer { withExtendedLifetime(live) {} }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let vin = "1HGCM82633A004352"
        try await live.publisher.send(
            "v1/obd/\(vin)/gps", #"{"ts":\#(now),"seq":1,"lat":3.14,"lon":101.69,"speed_kmh":20}"#)
        try await live.publisher.send("v1/obd/\(vin)/pids", #"{"ts":\#(now),"seq":2,"pids":{"0D":"32"}}"#)
        try waitFor("the readings") { try live.gateway.count("SELECT count(*) FROM readings_v") == 4 }
        let port = live.gateway.httpPort
        for (token, sees) in [(Self.viewerToken, false), (Self.operatorToken, false), (Self.trackerToken, true)] {
            let map = try Self.json(try Self.get(port, "/v1/map", token: token))
            let vehicles = (map["features"]?.arrayValue ?? []).filter {
                $0["id"]?.string?.hasPrefix("vehicle:") == true
            }
            #expect(vehicles.count == (sees ? 1 : 0), "\(token): \(map)")
            let detail = try Self.json(try Self.get(port, "/v1/devices/\(vin)", token: token))
            let signals = (detail["latest"]?.arrayValue ?? []).compactMap { $0["signal"]?.string }
            #expect(signals.contains("speed_kmh"))
            #expect(signals.contains("lat_deg") == sees, "\(token): \(signals)")
            #expect(signals.contains("gps_speed_kmh") == sees)
            let series = try Self.get(port, "/v1/series?device=\(vin)&signal=lat_deg&from=now-1h", token: token)
            #expect(series.status == (sees ? 200 : 403), "\(token): \(series.status)")
            if !sees { #expect(series.text.contains("positions scope")) }
        }
        let document = try Self.json(try Self.get(port, "/v1/openapi.json", token: Self.viewerToken))
        #expect(document["paths"]?["/v1/map"]?["get"]?["x-scopes"]?["positions"] != nil)
        #expect(document["paths"]?["/v1/series"]?["get"]?["x-scopes"]?["positions"] != nil)
    }
}
