import Advisories
import Alerts
import Console
import Geo
import HTTP
import JSON
import Logging
import RingStore
import Suggest
import Synchronization
import Telemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The JSON endpoints.
extension APIService {
    // MARK: health

    func health() throws(APIError) -> HTTPResponse {
        let live = status()
        let fill = try withStore { try $0.fill() }
        let now = TimeParsing.nowMs()
        let state: String
        // Full within the last minute: the oldest readings are being dropped to make room.
        let storeFull = live.ingest.lastStoreFullMs.map { now - $0 < 60_000 } ?? false
        if !live.brokerConnected {
            state = "down"
        } else if storeFull || (live.upstreamConfigured && !live.upstreamConnected) {
            state = "degraded"
        } else {
            state = "ok"
        }
        let headroom = Headroom(live: live, fill: fill, configuration: configuration)
        let body: JSONValue = .object(
            JSONObject([
                ("status", .string(state)),
                ("version", .string(live.version)),
                ("gateway_id", .string(live.gatewayID)),
                ("uptime_s", .int(max(0, now - live.startedMs) / 1000)),
                ("broker", .object(JSONObject([("connected", .bool(live.brokerConnected))]))),
                (
                    "certificates",
                    .object(
                        JSONObject(
                            live.certificateExpiry.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }))
                ),
                (
                    "upstream",
                    .object(
                        JSONObject([
                            ("configured", .bool(live.upstreamConfigured)),
                            ("connected", .bool(live.upstreamConnected)),
                            ("node", live.upstreamNode.map(JSONValue.string) ?? .null),
                            ("failovers", .int(live.upstreamFailovers)),
                            (
                                "backlog_messages",
                                .int(live.upstreamConfigured ? live.outboxBacklogMessages : fill.outboxMessages)
                            ),
                            ("backlog_bytes", .int(live.outboxBacklogBytes)),
                            ("limit_bytes", .int(configuration.outboxLimitBytes)),
                            ("oldest_unsent_age_s", fill.outboxOldestMs.map { .int(max(0, now - $0) / 1000) } ?? .null),
                        ]))
                ),
                (
                    "store",
                    .object(
                        JSONObject([
                            ("readings", .int(fill.readings)), ("capacity_readings", .int(fill.capacityReadings)),
                            (
                                "fill_ratio",
                                .double(
                                    fill.capacityReadings > 0
                                        ? Double(fill.readings) / Double(fill.capacityReadings) : 0)
                            ),
                            ("full", .bool(storeFull)), ("full_events", .int(live.ingest.storeFullEvents)),
                            ("readings_dropped_for_space", .int(fill.readingsDroppedForSpace)),
                            ("readings_evicted", .int(fill.readingsEvicted)), ("file_bytes", .int(fill.fileBytes)),
                            ("devices", .int(fill.devices)), ("alerts_active", .int(fill.alertsActive)),
                        ]))
                ),
                (
                    "privacy",
                    .object(
                        JSONObject([
                            ("position_retention_s", .int(configuration.positionRetentionS)),
                            (
                                "oldest_position_age_s",
                                fill.positionsOldestMs.map { .int(max(0, now - $0) / 1000) } ?? .null
                            ),
                            ("positions_erased", .int(live.ingest.positionsErased)),
                            ("vehicles_forgotten", .int(live.ingest.erasures)),
                        ]))
                ),
                (
                    "rates",
                    .object(
                        JSONObject([
                            ("readings_per_s", .double(rounded(live.readingsPerSecond))),
                            ("outbox_bytes_per_s", .double(rounded(live.outboxBytesPerSecond))),
                        ]))
                ),
                (
                    "headroom",
                    .object(
                        JSONObject([
                            ("readings_unaggregated_hours", hours(headroom.unaggregatedOverwriteS)),
                            ("ring_full_hours", hours(headroom.ringFullS)),
                            ("raw_retention_hours", hours(headroom.rawRetentionS)),
                            ("outbox_full_hours", hours(headroom.outboxFullS)),
                        ]))
                ),
            ]))
        return .json(body, status: state == "down" ? .serviceUnavailable : .ok)
    }

    private func hours(_ seconds: Double?) -> JSONValue {
        guard let seconds, seconds.isFinite else { return .null }
        return .double(rounded(seconds / 3600))
    }

    private func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    // MARK: devices

    func devices(_ request: HTTPRequest) throws(APIError) -> HTTPResponse {
        let kind = try kindParameter(request)
        let limit = try integerParameter(request, "limit", default: 100, range: 1...1000)
        var after: (kind: DeviceKind, name: String)?
        if let cursor = request.head.queryValue("cursor") {
            guard let decoded = Self.decodeCursor(cursor) else {
                throw .badParameter("cursor", "not a cursor this gateway issued; start again without it")
            }
            after = decoded
        }
        let page = try withStore { try $0.devices(kind: kind, after: after, limit: limit + 1) }
        let now = TimeParsing.nowMs()
        let shown = page.prefix(limit)
        var writer = JSONWriter(capacity: shown.count * 260 + 64)
        writer.beginObject()
        writer.key("devices")
        writer.beginArray()
        for device in shown { write(device, to: &writer, nowMs: now) }
        writer.endArray()
        writer.key("next_cursor")
        writer.value(page.count > limit ? shown.last.map { Self.encodeCursor($0.kind, $0.name) } : nil)
        writer.endObject()
        return .json(bytes: writer.bytes)
    }

    func device(_ request: HTTPRequest, id: String) throws(APIError) -> HTTPResponse {
        let device = try resolveDevice(id, kind: try kindParameter(request))
        let positions = seesPositions(request)
        let latest = latestValues.values(deviceRowID: device.rowID, kind: device.kind).filter {
            positions || !Self.isPosition($0.signal)
        }
        var writer = JSONWriter(capacity: 1024)
        write(device, to: &writer, nowMs: TimeParsing.nowMs(), open: true)
        writer.key("latest")
        writer.beginArray()
        for (signal, value) in latest {
            writer.beginObject()
            writer.field("signal", signal.name)
            writer.field("unit", signal.unit)
            writer.field("ts_ms", value.tsMs)
            writer.field("value", value.value)
            writer.endObject()
        }
        writer.endArray()
        if device.kind == .water {
            let settings = configuration.waterAlertOverrides[device.name] ?? configuration.waterAlerts
            writer.key("thresholds")
            writer.beginObject()
            writer.field("warning_cm", settings.warningCm)
            writer.field("alarm_cm", settings.alarmCm)
            writer.field("hysteresis_cm", settings.hysteresisCm)
            writer.endObject()
            if let forecast = forecasts?.forecast(device.name) {
                writer.key("forecast")
                write(forecast, to: &writer)
            }
        }
        writer.endObject()
        return .json(bytes: writer.bytes)
    }

    func write(_ forecast: LevelForecast, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("status", forecast.status.rawValue)
        writer.key("slope_cm_per_min")
        forecast.slopeCmPerMin.map { writer.value(($0 * 1000).rounded() / 1000) } ?? writer.value(nil as String?)
        writer.key("minutes_to_warning")
        forecast.minutesToWarning.map { writer.value(($0 * 10).rounded() / 10) } ?? writer.value(nil as String?)
        writer.key("minutes_to_alarm")
        forecast.minutesToAlarm.map { writer.value(($0 * 10).rounded() / 10) } ?? writer.value(nil as String?)
        writer.field("points", Int64(forecast.points))
        writer.field("detail", forecast.detail)
        writer.endObject()
    }

    // MARK: map

    /// GeoJSON: gauges (site, level state, newest level, forecast) and vehicles (newest
    /// position and its age), for a dashboard's map layer.
    func map(_ request: HTTPRequest) throws(APIError) -> HTTPResponse {
        let positions = seesPositions(request)
        let (sites, vehicles, gauges) = try withStore {
            reader -> ([(site: GaugeSite, state: String)], [StoreReader.Device], [StoreReader.Device]) in
            func all(_ kind: DeviceKind) throws -> [StoreReader.Device] {
                var devices: [StoreReader.Device] = []
                var after: (kind: DeviceKind, name: String)?
                while true {
                    let page = try reader.devices(kind: kind, after: after, limit: 5_000)
                    devices += page
                    guard page.count == 5_000, let last = page.last else { break }
                    after = (last.kind, last.name)
                }
                return devices
            }
            return (try reader.gaugeSites(), try all(.vehicle), try all(.water))
        }
        let gaugeRows = Dictionary(gauges.map { ($0.name, $0.rowID) }, uniquingKeysWith: { first, _ in first })
        let now = TimeParsing.nowMs()
        var writer = JSONWriter(capacity: 256 * (sites.count + vehicles.count) + 64)
        writer.beginObject()
        writer.field("type", "FeatureCollection")
        writer.key("features")
        writer.beginArray()
        func point(_ position: GeoPoint) {
            writer.key("geometry")
            writer.beginObject()
            writer.field("type", "Point")
            writer.key("coordinates")
            writer.beginArray()
            writer.value(position.lon)
            writer.value(position.lat)
            writer.endArray()
            writer.endObject()
        }
        for (site, state) in sites {
            writer.beginObject()
            writer.field("type", "Feature")
            writer.field("id", "gauge:" + site.sensor)
            point(site.position)
            writer.key("properties")
            writer.beginObject()
            writer.field("kind", "gauge")
            writer.field("device", site.sensor)
            writer.field("radius_m", site.radiusM)
            writer.field("state", state)
            if let row = gaugeRows[site.sensor],
                let level = latestValues.values(deviceRowID: row, kind: .water).first(where: {
                    $0.signal == .waterLevel
                })
            {
                writer.field("level_cm", level.value.value)
                writer.field("level_ts_ms", level.value.tsMs)
            }
            if let forecast = forecasts?.forecast(site.sensor) {
                writer.key("forecast")
                write(forecast, to: &writer)
            }
            writer.endObject()
            writer.endObject()
        }
        for vehicle in vehicles where positions {
            let values = latestValues.values(deviceRowID: vehicle.rowID, kind: .vehicle)
            guard let lat = values.first(where: { $0.signal == .latitude })?.value,
                let lon = values.first(where: { $0.signal == .longitude })?.value
            else { continue }
            writer.beginObject()
            writer.field("type", "Feature")
            writer.field("id", "vehicle:" + vehicle.name)
            point(GeoPoint(lat: lat.value, lon: lon.value))
            writer.key("properties")
            writer.beginObject()
            writer.field("kind", "vehicle")
            writer.field("device", vehicle.name)
            writer.field("ts_ms", lat.tsMs)
            writer.field("age_s", max(0, now - lat.tsMs) / 1000)
            if let speed = values.first(where: { $0.signal == .gpsSpeed })?.value {
                writer.field("speed_kmh", speed.value)
            }
            if let heading = values.first(where: { $0.signal == .heading })?.value {
                writer.field("heading_deg", heading.value)
            }
            writer.endObject()
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        var response = HTTPResponse.json(bytes: writer.bytes)
        response.headers.set("Content-Type", "application/geo+json")
        return response
    }

    /// One device object; `open` leaves it unclosed so the caller can add fields.
    func write(_ device: StoreReader.Device, to writer: inout JSONWriter, nowMs: Int64, open: Bool = false) {
        writer.beginObject()
        writer.field("id", device.name)
        writer.field("kind", device.kind.name)
        writer.field("last_seen_ms", device.lastSeenMs)
        writer.field("online", nowMs - device.lastSeenMs <= configuration.onlineAfterS * 1000)
        writer.field("fw", device.firmware)
        writer.field("hw", device.hardware)
        writer.field("model", device.model)
        writer.field("first_seen_ms", device.firstSeenMs)
        writer.field("seq_gaps", device.seqGaps)
        writer.field("duplicates", device.duplicates)
        writer.field("seq_resets", device.seqResets)
        writer.field("readings", device.readings)
        if !open { writer.endObject() }
    }

    func resolveDevice(_ id: String, kind: DeviceKind?) throws(APIError) -> StoreReader.Device {
        guard SensorID(id) != nil else {
            throw .badParameter("device", "\"\(id.prefix(64))\" is not a device id (1 to 64 of A-Z a-z 0-9 _ . -)")
        }
        let found = try withStore { try $0.devices(named: id) }.filter { kind == nil || $0.kind == kind }
        guard let first = found.first else {
            throw APIError(.notFound, "device_not_found", "no device \(id) has been heard by this gateway")
        }
        guard found.count == 1 else {
            throw APIError(
                .badRequest, "ambiguous_device",
                "both a vehicle and a sensor are called \(id); add kind=vehicle or kind=water")
        }
        return first
    }

    static func encodeCursor(_ kind: DeviceKind, _ name: String) -> String {
        Data("\(kind.rawValue):\(name)".utf8).base64EncodedString()
            .replacing("+", with: "-").replacing("/", with: "_")
            .replacing("=", with: "")
    }

    static func decodeCursor(_ cursor: String) -> (kind: DeviceKind, name: String)? {
        guard cursor.count <= 200 else { return nil }
        var base64 = cursor.replacing("-", with: "+").replacing("_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
            let colon = text.firstIndex(of: ":"), let raw = Int(text[..<colon]), let kind = DeviceKind(rawValue: raw),
            SensorID(text[text.index(after: colon)...]) != nil
        else { return nil }
        return (kind, String(text[text.index(after: colon)...]))
    }

    // MARK: series

    func series(_ request: HTTPRequest) throws(APIError) -> HTTPResponse {
        guard let deviceID = request.head.queryValue("device") else {
            throw .badParameter("device", "required: the device id")
        }
        guard let signalName = request.head.queryValue("signal") else {
            throw .badParameter("signal", "required: a signal name such as level_cm or speed_kmh")
        }
        guard let signal = Signal.named(signalName) else {
            var message = "unknown signal \"\(signalName.prefix(64))\""
            if let suggestion = Suggestion.closest(to: signalName, in: Signal.catalogue.map(\.name)) {
                message += "; did you mean \(suggestion)?"
            }
            throw .badParameter("signal", message)
        }
        if Self.isPosition(signal), !seesPositions(request) {
            throw APIError(
                .forbidden, "forbidden",
                "\(signal.name) is a vehicle position: it needs a token with the positions scope (http.tokens[].scopes)"
            )
        }
        let now = TimeParsing.nowMs()
        let stepMs: Int64
        if let text = request.head.queryValue("step") {
            guard let parsed = TimeParsing.durationMs(text), parsed >= 1000, parsed <= 31 * 86_400_000 else {
                throw .badParameter("step", "must be 1s to 31d, as seconds or with a unit (30s, 5m, 1h, 1d)")
            }
            guard parsed % 1000 == 0 else { throw .badParameter("step", "must be whole seconds") }
            stepMs = parsed
        } else {
            stepMs = 60_000
        }
        let toMs = try instantParameter(request, "to", default: now)
        let fromMs = try instantParameter(request, "from", default: toMs - 86_400_000)
        guard fromMs < toMs else { throw .badParameter("from", "must be before to") }
        let alignedFrom = fromMs - fromMs % stepMs
        let alignedTo = toMs % stepMs == 0 ? toMs : toMs - toMs % stepMs + stepMs
        let points = (alignedTo - alignedFrom) / stepMs
        guard points <= Int64(configuration.maxSeriesPoints) else {
            let minimumStep = ((alignedTo - alignedFrom) / Int64(configuration.maxSeriesPoints) + 999) / 1000
            throw APIError(
                .badRequest, "too_many_points",
                "from, to and step would give \(points) points, more than \(configuration.maxSeriesPoints); "
                    + "use step=\(minimumStep)s or more, or a shorter range")
        }
        let device = try resolveDevice(deviceID, kind: try kindParameter(request))
        guard signal.kind == device.kind else {
            throw .badParameter("signal", "\(signal.name) is not a \(device.kind.name) signal")
        }
        let key = SeriesCache.Key(
            device: device.rowID, signal: signal.id, fromMs: alignedFrom, toMs: alignedTo, stepMs: stepMs)
        let bypass = request.headers.tokens("cache-control").contains("no-cache")
        let clock = monotonicNanos()
        let entry: SeriesCache.Entry
        if !bypass, let cached = seriesCache.lookup(key, nowNanos: clock) {
            entry = cached
        } else {
            let window = configuration.aggregationWindowMs
            let open = openWindows
            let (buckets, source) = try withStore {
                try $0.series(
                    deviceRowID: device.rowID, signalID: signal.id, fromMs: alignedFrom, toMs: alignedTo,
                    stepMs: stepMs, windowMs: window, openWindows: open)
            }
            var writer = JSONWriter(capacity: buckets.count * 96 + 2)
            writer.beginArray()
            for bucket in buckets {
                writer.beginObject()
                writer.field("time", bucket.timeMs)
                writer.field("count", bucket.count)
                writer.field("min", bucket.min)
                writer.field("max", bucket.max)
                writer.field("mean", bucket.mean)
                writer.endObject()
            }
            writer.endArray()
            entry = SeriesCache.Entry(body: writer.bytes, source: source.rawValue, storedNanos: clock)
            seriesCache.store(key, entry)
        }
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        headers.add("X-Series-Source", entry.source)
        headers.add("X-Series-Step-Ms", String(stepMs))
        headers.add("X-Series-Unit", signal.unit)
        return HTTPResponse(status: .ok, headers: headers, body: entry.body)
    }

    // MARK: console

    /// A file of the console, with a policy that lets the page run only its own script and style.
    func consoleFile(_ name: String) throws(APIError) -> HTTPResponse {
        guard let asset = ConsoleAssets.files[name] else {
            throw APIError(.notFound, "not_found", "the console has app.css and app.js, not \(name.prefix(64))")
        }
        var headers = HTTPHeaders()
        headers.add("Content-Type", asset.contentType)
        headers.add("Content-Security-Policy", ConsoleAssets.contentSecurityPolicy)
        headers.add("X-Frame-Options", "DENY")
        headers.add("Referrer-Policy", "no-referrer")
        return HTTPResponse(status: .ok, headers: headers, body: asset.bytes)
    }

    // MARK: erasure

    func forget(_ request: HTTPRequest, id: String) throws(APIError) -> HTTPResponse {
        guard let vin = VIN(id) else {
            throw .badParameter(
                "id", "only a vehicle can be forgotten, and \"\(id.prefix(64))\" is not a VIN (17 of A-H J-N P R-Z 0-9)"
            )
        }
        guard let forgetVehicle else {
            throw APIError(.serviceUnavailable, "unavailable", "this gateway does not take erasures")
        }
        // The route is for operators: the request was authenticated before it got here.
        let requestedBy =
            switch authority.authenticate(authorization: request.head.headers["authorization"]) {
            case .authenticated(let name, _): name
            default: "unknown"
            }
        let report: ErasureReport
        switch forgetVehicle(vin, requestedBy) {
        case nil:
            throw APIError(
                .serviceUnavailable, "not_applied",
                "the erasure did not finish within 60 s; it may still complete: see gatewayd's log, then ask again (asking again is harmless)"
            )
        case .failure(let error)?:
            throw APIError(.serviceUnavailable, "erasure_failed", "nothing was erased: \(error)")
        case .success(let done)?:
            report = done
        }
        seriesCache.removeAll()
        var writer = JSONWriter(capacity: 512)
        writer.beginObject()
        writer.field("device", vin.value)
        writer.field("known", report.known)
        writer.key("removed")
        writer.beginObject()
        writer.field("readings", Int64(report.readings))
        writer.field("positions", Int64(report.positions))
        writer.field("events", Int64(report.events))
        writer.field("aggregates", Int64(report.aggregates))
        writer.field("alerts", Int64(report.alerts))
        writer.field("active_alerts", Int64(report.activeAlerts))
        writer.field("advisories", Int64(report.advisories))
        writer.field("rejects", Int64(report.rejects))
        writer.field("outbox_rewritten", Int64(report.outboxRewritten))
        writer.field("outbox_deleted", Int64(report.outboxDeleted))
        writer.field("ota_records", Int64(report.otaRecords))
        writer.endObject()
        writer.field("upstream_names", Int64(report.upstreamNames))
        writer.field("wal_truncated", report.walTruncated)
        writer.endObject()
        return .json(bytes: writer.bytes)
    }

    // MARK: sensor sites

    func putSite(_ request: HTTPRequest, id: String) throws(APIError) -> HTTPResponse {
        guard SensorID(id) != nil else {
            throw .badParameter("id", "\"\(id.prefix(64))\" is not a sensor id (1 to 64 of A-Z a-z 0-9 _ . -)")
        }
        guard let setSensorSite else {
            throw APIError(.serviceUnavailable, "unavailable", "this gateway does not take sensor sites")
        }
        let body: JSONValue
        do {
            body = try JSONParser.parse(request.body)
        } catch {
            throw APIError(.badRequest, "invalid_body", "the body is not JSON: \(error)")
        }
        guard case .object(let object) = body else {
            throw APIError(.badRequest, "invalid_body", "the body must be {\"lat\", \"lon\", \"radius_m\"}")
        }
        for key in object.keys where !["lat", "lon", "radius_m"].contains(key) {
            throw APIError(
                .badRequest, "invalid_body", "unknown key \(key.prefix(32)); the body takes lat, lon, radius_m")
        }
        func number(_ key: String, _ range: ClosedRange<Double>) throws(APIError) -> Double {
            guard let value = object[key]?.number else {
                throw APIError(.badRequest, "invalid_body", "\(key) is required and must be a number")
            }
            guard range.contains(value) else {
                throw APIError(
                    .badRequest, "invalid_body", "\(key) \(value) outside \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        let site = GaugeSite(
            sensor: id, position: GeoPoint(lat: try number("lat", -90...90), lon: try number("lon", -180...180)),
            radiusM: try number("radius_m", 1...GaugeSite.maxRadiusM))
        guard setSensorSite(site) else {
            throw APIError(
                .serviceUnavailable, "not_applied", "the site was not stored in time; see gatewayd's log and retry")
        }
        var writer = JSONWriter(capacity: 128)
        writer.beginObject()
        writer.field("sensor", site.sensor)
        writer.field("lat", site.position.lat)
        writer.field("lon", site.position.lon)
        writer.field("radius_m", site.radiusM)
        writer.endObject()
        return .json(bytes: writer.bytes)
    }

    // MARK: alerts and rejects

    func alerts(_ request: HTTPRequest) throws(APIError) -> HTTPResponse {
        let state = request.head.queryValue("state") ?? "active"
        guard state == "active" || state == "all" else { throw .badParameter("state", "must be active or all") }
        let since = try instantParameter(request, "since", default: 0)
        let limit = try integerParameter(request, "limit", default: 100, range: 1...1000)
        let alerts = try withStore { try $0.alerts(activeOnly: state == "active", sinceMs: since, limit: limit) }
        return .json(
            .object(
                JSONObject([
                    (
                        "alerts",
                        .array(
                            alerts.map {
                                .object(
                                    JSONObject([
                                        ("id", .string($0.alertID)), ("device", .string($0.device)),
                                        ("type", .string($0.type)), ("subject", .string($0.subject)),
                                        ("state", .string($0.state)), ("value", .double($0.value)),
                                        ("ts_ms", .int($0.tsMs)),
                                    ]))
                            })
                    )
                ])))
    }

    func rejects(_ request: HTTPRequest) throws(APIError) -> HTTPResponse {
        let limit = try integerParameter(request, "limit", default: 50, range: 1...1000)
        let (recent, held) = try withStore { (try $0.rejects(limit: limit), try $0.rejectCounts()) }
        let sinceStart = status().ingest.rejects
        func counts(_ table: [String: Int64]) -> JSONValue {
            .object(JSONObject(table.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int($0.value)) }))
        }
        return .json(
            .object(
                JSONObject([
                    ("counts_held", counts(held)),
                    ("counts_since_start", counts(sinceStart)),
                    (
                        "recent",
                        .array(
                            recent.map {
                                .object(
                                    JSONObject([
                                        ("ts_ms", .int($0.tsMs)), ("topic", .string($0.topic)),
                                        ("reason", .string($0.reason)), ("detail", .string($0.detail)),
                                    ]))
                            })
                    ),
                ])))
    }

    // MARK: parameters

    func kindParameter(_ request: HTTPRequest) throws(APIError) -> DeviceKind? {
        guard let text = request.head.queryValue("kind") else { return nil }
        guard let kind = DeviceKind(name: text) else { throw .badParameter("kind", "must be vehicle or water") }
        return kind
    }

    func integerParameter(_ request: HTTPRequest, _ name: String, default value: Int, range: ClosedRange<Int>)
        throws(APIError) -> Int
    {
        guard let text = request.head.queryValue(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw .badParameter(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    func instantParameter(_ request: HTTPRequest, _ name: String, default value: Int64) throws(APIError) -> Int64 {
        guard let text = request.head.queryValue(name) else { return value }
        guard let ms = TimeParsing.instant(text, nowMs: TimeParsing.nowMs()) else {
            throw .badParameter(name, "must be unix milliseconds, RFC 3339 (2026-11-21T10:00:00Z), now or now-24h")
        }
        return ms
    }
}

/// Hours of headroom at current rates (nil: not reached at these rates).
struct Headroom {
    var ringFullS: Double?
    var rawRetentionS: Double?
    var unaggregatedOverwriteS: Double?
    var outboxFullS: Double?

    init(live: LiveStatus, fill: StoreReader.Fill, configuration: APIConfiguration) {
        let rate = live.readingsPerSecond
        if rate > 0, fill.capacityReadings > 0 {
            let capacity = Double(fill.capacityReadings)
            ringFullS = max(0, capacity - Double(fill.readings)) / rate
            rawRetentionS = capacity / rate
            // A reading is aggregated once its window closed (window + lateness after it
            // arrived). The ring overwrites readings of age capacity/rate; only when that is
            // shorter than the aggregation delay does it overwrite unaggregated ones.
            if let window = configuration.aggregationWindowMs {
                let delay = window + configuration.aggregationLatenessMs
                unaggregatedOverwriteS = capacity / rate * 1000 <= Double(delay) ? ringFullS : nil
            } else {
                unaggregatedOverwriteS = ringFullS
            }
        }
        if live.upstreamConfigured, live.outboxBytesPerSecond > 0 {
            outboxFullS =
                max(0, Double(configuration.outboxLimitBytes - live.outboxBacklogBytes)) / live.outboxBytesPerSecond
        }
    }
}
