import API
import Foundation
import JSON
import Telemetry

/// The commands that ask the REST API.
enum Commands {
    static func emit(_ response: APIClient.Response) {
        print(String(decoding: response.body, as: UTF8.self))
    }

    /// What `health` exits with, so a monitoring check can act on it: 0 ok, 1 degraded, 2 down
    /// (as Nagios plugins do); failures to ask keep their own codes (69, 77, ...).
    static func healthExitCode(_ status: String?) -> Int32 {
        switch status {
        case "ok": 0
        case "degraded": 1
        default: 2
        }
    }

    /// Why a gateway is not `ok`, in words, from its health body.
    static func healthReasons(_ body: JSONValue) -> [String] {
        var reasons: [String] = []
        if body["broker"]?["connected"] != .bool(true) {
            reasons.append("gatewayd cannot reach its MQTT broker and keeps retrying (systemctl status mosquitto)")
        }
        if body["upstream"]?["configured"] == .bool(true), body["upstream"]?["connected"] != .bool(true) {
            reasons.append("the city link (upstream) is down; messages wait in the outbox")
        }
        if body["store"]?["full"] == .bool(true) {
            reasons.append("the disk (or store.max_file_bytes) is full; the oldest readings make room")
        }
        return reasons
    }

    static func health() throws(ClientError) {
        // 503 is the answer of a gateway whose broker is down: a status to show, not an error.
        let (body, response) = try client.json("/v1/health", accepting: [503])
        defer { exit(healthExitCode(body["status"]?.string)) }
        if wantsJSON { return emit(response) }
        let store = body["store"]
        let upstream = body["upstream"]
        let headroom = body["headroom"]
        let status = text(body["status"])
        var lines = [
            "status       \(status == "ok" ? status : status.uppercased()) (version \(text(body["version"])), "
                + "gateway \(text(body["gateway_id"])), up \(number(body["uptime_s"]))s)"
        ]
        lines += healthReasons(body).map { "  why        " + $0 }
        lines.append("broker       " + (body["broker"]?["connected"] == .bool(true) ? "connected" : "DISCONNECTED"))
        if upstream?["configured"] == .bool(true) {
            lines.append(
                "upstream     " + (upstream?["connected"] == .bool(true) ? "connected" : "DISCONNECTED")
                    + (upstream?["node"]?.string.map { " (node \($0), \(number(upstream?["failovers"])) failovers)" } ?? "")
                    + ", backlog \(number(upstream?["backlog_messages"])) messages / \(number(upstream?["backlog_bytes"])) bytes"
                    + ", oldest unsent \(number(upstream?["oldest_unsent_age_s"]))s")
        } else {
            lines.append("upstream     not configured")
        }
        lines.append(
            "store        \(number(store?["readings"])) of \(number(store?["capacity_readings"])) readings"
                + " (\(number(store?["fill_ratio"]))), \(number(store?["file_bytes"])) bytes, \(number(store?["devices"])) devices"
        )
        lines.append("rate         \(number(body["rates"]?["readings_per_s"])) readings/s")
        lines.append(
            "headroom     ring full in \(number(headroom?["ring_full_hours"])) h, raw kept \(number(headroom?["raw_retention_hours"])) h, "
                + "unaggregated overwritten in \(number(headroom?["readings_unaggregated_hours"])) h, "
                + "outbox full in \(number(headroom?["outbox_full_hours"])) h  (- = not at current rates)")
        print(lines.joined(separator: "\n"))
    }

    static func devices() throws(ClientError) {
        var rows: [[String]] = []
        var bodies: [String] = []
        var cursor: String?
        repeat {
            let (body, response) = try client.json(
                "/v1/devices",
                query: [("kind", arguments.value("--kind")), ("limit", arguments.value("--limit")), ("cursor", cursor)])
            bodies.append(String(decoding: response.body, as: UTF8.self))
            guard case .array(let devices)? = body["devices"] else { throw .badResponse("no devices array") }
            for device in devices {
                rows.append([
                    text(device["id"]), text(device["kind"]), age(integer(device["last_seen_ms"])),
                    device["online"] == .bool(true) ? "yes" : "no", text(device["fw"]), text(device["hw"]),
                    number(device["seq_gaps"]), number(device["duplicates"]), number(device["readings"]),
                ])
            }
            cursor = body["next_cursor"]?.string
        } while cursor != nil && arguments.flag("--all")
        if wantsJSON { return bodies.forEach { print($0) } }
        print(table(["DEVICE", "KIND", "LAST SEEN", "ONLINE", "FW", "HW", "GAPS", "DUPS", "READINGS"], rows))
        if cursor != nil { print("(more: --all, or --limit)") }
    }

    static func device(_ id: String) throws(ClientError) {
        let path = "/v1/devices/" + (id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id)
        let (body, response) = try client.json(path, query: [("kind", arguments.value("--kind"))])
        if wantsJSON { return emit(response) }
        print("device       \(text(body["id"])) (\(text(body["kind"])))")
        print(
            "last seen    \(age(integer(body["last_seen_ms"]))), "
                + (body["online"] == .bool(true) ? "online" : "offline"))
        print("firmware     \(text(body["fw"]))  hardware \(text(body["hw"]))  model \(text(body["model"]))")
        print(
            "loss         \(number(body["seq_gaps"])) gaps, \(number(body["duplicates"])) duplicates, \(number(body["seq_resets"])) restarts"
        )
        print("readings     \(number(body["readings"]))")
        guard case .array(let latest)? = body["latest"], !latest.isEmpty else { return }
        print("")
        print(
            table(
                ["SIGNAL", "VALUE", "UNIT", "AT"],
                latest.map { [text($0["signal"]), number($0["value"]), text($0["unit"]), age(integer($0["ts_ms"]))] }))
    }

    static func series(_ device: String, _ signal: String) throws(ClientError) {
        let (body, response) = try client.json(
            "/v1/series",
            query: [
                ("device", device), ("signal", signal), ("from", arguments.value("--from")),
                ("to", arguments.value("--to")),
                ("step", arguments.value("--step")), ("kind", arguments.value("--kind")),
            ])
        if wantsJSON { return emit(response) }
        guard case .array(let points) = body else { throw .badResponse("the series is not an array") }
        let unit = response.headers["x-series-unit"] ?? ""
        let source = response.headers["x-series-source"] ?? "?"
        guard !points.isEmpty else {
            print("no readings of \(signal) from \(device) in that range")
            return
        }
        let means = points.map { $0["mean"]?.number ?? 0 }
        print("\(device) \(signal) (\(unit)), \(points.count) buckets from \(source)")
        print(sparkline(means))
        print(
            "min \(number(.double(points.compactMap { $0["min"]?.number }.min() ?? 0)))  max \(number(.double(points.compactMap { $0["max"]?.number }.max() ?? 0)))"
        )
        print("")
        let shown = points.suffix(20)
        if points.count > shown.count { print("(last \(shown.count) of \(points.count) buckets; --json for all)") }
        print(
            table(
                ["TIME (UTC)", "COUNT", "MIN", "MAX", "MEAN"],
                shown.map {
                    [
                        utc(integer($0["time"])), number($0["count"]), number($0["min"]), number($0["max"]),
                        number($0["mean"]),
                    ]
                }))
    }

    static func alerts() throws(ClientError) {
        let (body, response) = try client.json(
            "/v1/alerts",
            query: [
                ("state", arguments.value("--state")), ("since", arguments.value("--since")),
                ("limit", arguments.value("--limit")),
            ])
        if wantsJSON { return emit(response) }
        guard case .array(let alerts)? = body["alerts"] else { throw .badResponse("no alerts array") }
        guard !alerts.isEmpty else {
            print("no alerts")
            return
        }
        print(
            table(
                ["ID", "DEVICE", "TYPE", "SUBJECT", "STATE", "VALUE", "WHEN"],
                alerts.map {
                    [
                        text($0["id"]), text($0["device"]), text($0["type"]), text($0["subject"]), text($0["state"]),
                        number($0["value"]), age(integer($0["ts_ms"])),
                    ]
                }))
    }

    static func rejects() throws(ClientError) {
        let (body, response) = try client.json("/v1/rejects", query: [("limit", arguments.value("--limit"))])
        if wantsJSON { return emit(response) }
        if case .object(let counts)? = body["counts_since_start"], !counts.members.isEmpty {
            print(table(["REASON", "SINCE START"], counts.members.map { [$0.key, number($0.value)] }))
            print("")
        }
        guard case .array(let recent)? = body["recent"], !recent.isEmpty else {
            print("no rejects held")
            return
        }
        print(
            table(
                ["WHEN", "REASON", "TOPIC", "DETAIL"],
                recent.map {
                    [
                        age(integer($0["ts_ms"])), text($0["reason"]), String(text($0["topic"]).prefix(60)),
                        String(text($0["detail"]).prefix(80)),
                    ]
                }))
    }

    static func map() throws(ClientError) {
        let (body, response) = try client.json("/v1/map")
        if wantsJSON { return emit(response) }
        guard case .array(let features)? = body["features"] else { throw .badResponse("no features array") }
        func coordinates(_ feature: JSONValue) -> String {
            guard case .array(let pair)? = feature["geometry"]?["coordinates"], pair.count == 2 else { return "-" }
            return "\(number(pair[1])), \(number(pair[0]))"
        }
        let gauges = features.filter { $0["properties"]?["kind"] == .string("gauge") }
        let vehicles = features.filter { $0["properties"]?["kind"] == .string("vehicle") }
        print(
            table(
                ["GAUGE", "POSITION", "RADIUS M", "STATE", "LEVEL CM", "TREND", "TO ALARM (MIN)"],
                gauges.map {
                    let p = $0["properties"]
                    return [
                        text(p?["device"]), coordinates($0), number(p?["radius_m"]), text(p?["state"]),
                        number(p?["level_cm"]), text(p?["forecast"]?["status"]),
                        number(p?["forecast"]?["minutes_to_alarm"]),
                    ]
                }))
        print("")
        print("\(vehicles.count) vehicles with a position")
        print(
            table(
                ["VEHICLE", "POSITION", "AGE S", "SPEED"],
                vehicles.prefix(20).map {
                    let p = $0["properties"]
                    return [text(p?["device"]), coordinates($0), number(p?["age_s"]), number(p?["speed_kmh"])]
                }))
    }

    static func sensorSet(_ id: String) throws(ClientError) {
        guard arguments.arguments[0] == "set" else {
            fail("usage: gwctl sensor set ID --lat --lon --radius-m", code: 64)
        }
        guard let lat = arguments.value("--lat").flatMap(Double.init),
            let lon = arguments.value("--lon").flatMap(Double.init),
            let radius = arguments.value("--radius-m").flatMap(Double.init)
        else {
            fail("sensor set needs --lat, --lon and --radius-m as numbers", code: 64)
        }
        let body = JSONValue.object(
            JSONObject([("lat", .double(lat)), ("lon", .double(lon)), ("radius_m", .double(radius))]))
        let path = "/v1/sensors/" + (id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id) + "/site"
        let response = try client.send("PUT", path, json: Data(body.serialized().utf8))
        if wantsJSON { return emit(response) }
        print(
            "sensor \(id): lat \(lat), lon \(lon), radius \(radius) m — stored; vehicles inside are advised while it floods"
        )
    }

    static func forget(_ vin: String) throws(ClientError) {
        guard VIN(vin) != nil else {
            fail("\"\(vin.prefix(64))\" is not a VIN (17 of A-H J-N P R-Z 0-9): only vehicles are forgotten", code: 64)
        }
        let response = try client.send("POST", "/v1/devices/\(vin)/forget", timeout: 75)
        if wantsJSON { return emit(response) }
        guard case .object(let report)? = try? JSONParser.parse(Array(response.body)),
            let removed = report["removed"]?.object
        else {
            fail("the gateway answered something else than an erasure report")
        }
        let known = report["known"] == .bool(true)
        print(known ? "vehicle \(vin) forgotten" : "vehicle \(vin) was not known as a device; traces of it were erased")
        for (key, value) in removed.members {
            guard let count = value.number, count > 0 else { continue }
            print("  \(key.replacingOccurrences(of: "_", with: " ")): \(Int(count))")
        }
        let names = Int(report["upstream_names"]?.number ?? 0)
        if names > 0 { print("  erasure notice queued upstream, naming \(names) pseudonym(s) of the vehicle") }
        if report["wal_truncated"] != .bool(true) {
            print("  note: the write-ahead log was busy; its old pages go at the next checkpoint")
        }
    }

    static func token() {
        guard let role = arguments.value("--role"), let parsed = Role(rawValue: role) else {
            fail("token new needs --role viewer or --role operator", code: 64)
        }
        let name = arguments.value("--name") ?? (parsed == .viewer ? "dashboard" : "operator")
        var scopes: [JSONValue] = []
        if let scope = arguments.value("--scope") {
            guard Scope(rawValue: scope) != nil else {
                fail(
                    "unknown scope \"\(scope)\"; scopes: \(Scope.allCases.map(\.rawValue).joined(separator: ", "))",
                    code: 64)
            }
            scopes.append(.string(scope))
        }
        let made: (token: String, sha256: String)
        do { made = try TokenAuthority.newToken() } catch { fail("\(error)") }
        var fields: [(key: String, value: JSONValue)] = [("name", .string(name)), ("role", .string(role))]
        if !scopes.isEmpty { fields.append(("scopes", .array(scopes))) }
        fields.append(("sha256", .string(made.sha256)))
        let line = JSONValue.object(JSONObject(fields))
        if wantsJSON {
            print(
                JSONValue.object(JSONObject([("token", .string(made.token)), ("config", line)])).serialized())
            return
        }
        print("token: \(made.token)")
        print("Give the token to the client; put only its hash in http.tokens of gatewayd's config:")
        print(line.serialized())
    }
}
