public import Advisories
public import Alerts
import Crypto
import Geo
public import JSON
import Telemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Everything gatewayd reads from its JSON configuration file. Every key is optional.
public struct GatewayConfiguration: Sendable {
    public struct Broker: Sendable {
        public var host = "127.0.0.1"
        public var port: Int64 = 1883
        public var clientID: String?
        public var username: String?
        public var passwordFile: String?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var keepAliveSeconds: Int64 = 30
    }

    public struct Store: Sendable {
        public var path = "var/gateway.db"
        public var capacityReadings: Int64 = 1_000_000
        public var capacityEvents: Int64 = 100_000
        public var capacityRejects: Int64 = 10_000
        public var flushIntervalMs: Int64 = 50
        public var flushMaxReadings: Int64 = 10_000
        public var synchronous = "full"
        public var maxDevices: Int64 = 100_000
        /// A cap on the database file below the partition's free space (0: only the disk).
        public var maxFileBytes: Int64 = 0
        /// Disk space held back for SQLite to make room with when the disk fills (0: none).
        public var reserveBytes: Int64 = 8 * 1024 * 1024
    }

    public struct Limits: Sendable {
        public var maxPayloadBytes: Int64 = 16 * 1024
        public var maxFutureSkewMs: Int64 = 86_400_000
        public var inboundQueue: Int64 = 8192
        /// Messages per second one device may send on average, and in a burst; above that its
        /// messages are refused (`rate_limited`) so a runaway unit cannot starve the others.
        public var deviceRatePerS: Double = 20
        public var deviceBurst: Int64 = 200
    }

    public struct Aggregation: Sendable {
        public var enabled = true
        public var windowS: Int64 = 60
        public var latenessMs: Int64 = 2_000
        public var retentionDays: Int64 = 7
        public var capacityRows: Int64 = 1_000_000
    }

    public struct AlertSettings: Sendable {
        public var water = WaterAlertSettings()
        public var waterSensors: [String: WaterAlertSettings] = [:]
        public var coolantC: Double = 110
    }

    public struct Upstream: Sendable {
        /// One node of the city's broker cluster.
        public struct Node: Sendable, Equatable, CustomStringConvertible {
            public var host: String
            public var port: Int64
            public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        }

        /// The city broker's nodes, tried in this order (`upstream.hosts`, or the one node of
        /// `upstream.host`). The upstream link is on when there is at least one.
        public var nodes: [Node] = []
        public var port: Int64 = 8883
        /// The backoff cap once every node refused: short, so that the link is back within
        /// seconds of the cluster, where the local broker's 30 s would leave it idle.
        public var reconnectMaxS: Int64 = 5
        /// How long a node may take to accept (TLS and CONNACK) before the next one is tried.
        public var connectTimeoutS: Int64 = 5
        public var clientID: String?
        public var topicPrefix = "city"
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var allowInsecure = false
        public var maxBacklogBytes: Int64 = 256 * 1024 * 1024
        public var maxRateMsgsPerS: Int64 = 200
        public var statusIntervalS: Int64 = 60
        public var keepAliveSeconds: Int64 = 30

        public var enabled: Bool { !nodes.isEmpty }
    }

    public struct Log: Sendable {
        public var level = "info"
        public var statsIntervalS: Int64 = 10
    }

    public var gatewayID = "gw-01"
    public var broker = Broker()
    public var store = Store()
    public var limits = Limits()
    public var aggregation = Aggregation()
    public var alerts = AlertSettings()
    public var upstream = Upstream()
    public var http = HTTPSettings()
    public var ota = OTASettings()
    public var privacy = PrivacySettings()
    /// Where water gauges are, for flooded-road advisories (`sensors.{id}.{lat, lon, radius_m}`).
    public var sensorSites: [GaugeSite] = []
    public var log = Log()

    public init() {}

    /// The MQTT client id: stable per gateway, so the broker keeps its persistent session.
    public var clientID: String { broker.clientID ?? "telemetry-gateway-\(gatewayID)" }

    /// Parses a configuration document; returns the configuration and every problem found.
    public static func parse(_ document: JSONValue) -> (GatewayConfiguration, [ConfigProblem]) {
        var reader = ConfigReader()
        var config = GatewayConfiguration()
        guard case .object(let root) = document else {
            reader.problem("(root)", "must be a JSON object, got \(document.typeName)")
            return (config, reader.problems)
        }
        reader.checkUnknownKeys(
            root, path: "",
            known: [
                "gateway_id", "gateway_id_file", "broker", "store", "limits", "aggregation", "alerts", "upstream",
                "http",
                "sensors", "ota", "privacy", "log",
            ])

        // The packaged configuration is a dpkg conffile, identical on every board; each board's
        // identity lives in a file of its own that the package writes once.
        var gatewayID = reader.string(root, "gateway_id", path: "gateway_id", default: config.gatewayID)!
        if let idFile = reader.string(root, "gateway_id_file", path: "gateway_id_file", default: nil) {
            if root["gateway_id"] != nil {
                reader.problem("gateway_id_file", "give gateway_id or gateway_id_file, not both")
            } else if let data = FileManager.default.contents(atPath: idFile) {
                gatewayID =
                    String(decoding: data, as: UTF8.self).split(separator: "\n").first
                    .map { $0.trimming(while: \.isWhitespace) } ?? ""
            } else {
                reader.problem(
                    "gateway_id_file",
                    "cannot read \(idFile): \(String(cString: strerror(errno))); write this board's id (1 to 64 of A-Z a-z 0-9 - _) into it"
                )
            }
        }
        if gatewayID.isEmpty || gatewayID.utf8.count > 64
            || !gatewayID.utf8.allSatisfy({ $0 < 0x80 && (isalnum(Int32($0)) != 0 || $0 == 0x2D || $0 == 0x5F) })
        {
            reader.problem("gateway_id", "must be 1 to 64 of A-Z a-z 0-9 - _, got \"\(gatewayID)\"")
        } else {
            config.gatewayID = gatewayID
        }

        let broker = reader.object(
            root, "broker", path: "broker",
            known: ["host", "port", "client_id", "username", "password_file", "tls", "keepalive_s"])
        config.broker.host = reader.string(broker, "host", path: "broker.host", default: config.broker.host)!
        config.broker.port = reader.integer(broker, "port", path: "broker.port", default: 1883, range: 1...65535)
        config.broker.clientID = reader.string(broker, "client_id", path: "broker.client_id", default: nil)
        if let clientID = config.broker.clientID, clientID.isEmpty || clientID.utf8.count > 128 {
            reader.problem("broker.client_id", "must be 1 to 128 bytes")
        }
        config.broker.username = reader.string(broker, "username", path: "broker.username", default: nil)
        config.broker.passwordFile = reader.string(broker, "password_file", path: "broker.password_file", default: nil)
        config.broker.keepAliveSeconds = reader.integer(
            broker, "keepalive_s", path: "broker.keepalive_s", default: 30, range: 5...3600)
        let tls = reader.object(broker, "tls", path: "broker.tls", known: ["ca_file", "cert_file", "key_file"])
        config.broker.caFile = reader.string(tls, "ca_file", path: "broker.tls.ca_file", default: nil)
        config.broker.certFile = reader.string(tls, "cert_file", path: "broker.tls.cert_file", default: nil)
        config.broker.keyFile = reader.string(tls, "key_file", path: "broker.tls.key_file", default: nil)
        if config.broker.caFile == nil, config.broker.certFile != nil || config.broker.keyFile != nil {
            reader.problem("broker.tls.ca_file", "is required with a client certificate: TLS is on when ca_file is set")
        }
        if (config.broker.certFile == nil) != (config.broker.keyFile == nil) {
            reader.problem("broker.tls", "cert_file and key_file go together: set both or neither")
        }
        reader.checkReadable([
            ("broker.password_file", config.broker.passwordFile), ("broker.tls.ca_file", config.broker.caFile),
            ("broker.tls.cert_file", config.broker.certFile), ("broker.tls.key_file", config.broker.keyFile),
        ])

        let store = reader.object(
            root, "store", path: "store",
            known: [
                "path", "capacity_readings", "capacity_events", "capacity_rejects", "flush_interval_ms",
                "flush_max_readings", "synchronous", "max_devices", "max_file_bytes", "reserve_bytes",
            ])
        config.store.path = reader.string(store, "path", path: "store.path", default: config.store.path)!
        if config.store.path.isEmpty { reader.problem("store.path", "must not be empty") }
        config.store.capacityReadings = reader.integer(
            store, "capacity_readings", path: "store.capacity_readings", default: config.store.capacityReadings,
            range: 1_000...1_000_000_000)
        config.store.capacityEvents = reader.integer(
            store, "capacity_events", path: "store.capacity_events", default: config.store.capacityEvents,
            range: 100...100_000_000)
        config.store.capacityRejects = reader.integer(
            store, "capacity_rejects", path: "store.capacity_rejects", default: config.store.capacityRejects,
            range: 100...10_000_000)
        config.store.flushIntervalMs = reader.integer(
            store, "flush_interval_ms", path: "store.flush_interval_ms", default: config.store.flushIntervalMs,
            range: 1...10_000)
        config.store.flushMaxReadings = reader.integer(
            store, "flush_max_readings", path: "store.flush_max_readings", default: config.store.flushMaxReadings,
            range: 1...1_000_000)
        config.store.maxDevices = reader.integer(
            store, "max_devices", path: "store.max_devices", default: config.store.maxDevices, range: 1...10_000_000)
        config.store.maxFileBytes = reader.integer(
            store, "max_file_bytes", path: "store.max_file_bytes", default: 0, range: 0...(1 << 40))
        if config.store.maxFileBytes != 0 && config.store.maxFileBytes < 1 << 20 {
            reader.problem(
                "store.max_file_bytes", "must be 0 (no limit) or at least 1048576, got \(config.store.maxFileBytes)")
            config.store.maxFileBytes = 0
        }
        config.store.reserveBytes = reader.integer(
            store, "reserve_bytes", path: "store.reserve_bytes", default: config.store.reserveBytes,
            range: 0...(1 << 34))
        config.store.synchronous = reader.choice(
            store, "synchronous", path: "store.synchronous", default: "full", allowed: ["full", "normal"])

        let limits = reader.object(
            root, "limits", path: "limits",
            known: ["max_payload_bytes", "max_future_skew_ms", "inbound_queue", "device_rate_per_s", "device_burst"])
        config.limits.maxPayloadBytes = reader.integer(
            limits, "max_payload_bytes", path: "limits.max_payload_bytes", default: config.limits.maxPayloadBytes,
            range: 256...1_048_576)
        config.limits.maxFutureSkewMs = reader.integer(
            limits, "max_future_skew_ms", path: "limits.max_future_skew_ms", default: config.limits.maxFutureSkewMs,
            range: 0...31_536_000_000)
        config.limits.inboundQueue = reader.integer(
            limits, "inbound_queue", path: "limits.inbound_queue", default: config.limits.inboundQueue,
            range: 16...1_000_000)
        config.limits.deviceRatePerS = reader.number(
            limits, "device_rate_per_s", path: "limits.device_rate_per_s", default: config.limits.deviceRatePerS,
            range: 0.01...1_000_000)
        config.limits.deviceBurst = reader.integer(
            limits, "device_burst", path: "limits.device_burst", default: config.limits.deviceBurst,
            range: 1...1_000_000)

        let aggregation = reader.object(
            root, "aggregation", path: "aggregation",
            known: ["enabled", "window_s", "lateness_ms", "retention_days", "capacity_rows"])
        config.aggregation.enabled = reader.boolean(
            aggregation, "enabled", path: "aggregation.enabled", default: config.aggregation.enabled)
        config.aggregation.windowS = reader.integer(
            aggregation, "window_s", path: "aggregation.window_s", default: config.aggregation.windowS, range: 1...3600)
        if 3600 % config.aggregation.windowS != 0 {
            reader.problem(
                "aggregation.window_s",
                "must divide 3600 so windows roll up into hours (1, 2, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, ...), got \(config.aggregation.windowS)"
            )
            config.aggregation.windowS = 60
        }
        config.aggregation.latenessMs = reader.integer(
            aggregation, "lateness_ms", path: "aggregation.lateness_ms", default: config.aggregation.latenessMs,
            range: 0...3_600_000)
        config.aggregation.retentionDays = reader.integer(
            aggregation, "retention_days", path: "aggregation.retention_days",
            default: config.aggregation.retentionDays, range: 1...3650)
        config.aggregation.capacityRows = reader.integer(
            aggregation, "capacity_rows", path: "aggregation.capacity_rows", default: config.aggregation.capacityRows,
            range: 1_000...1_000_000_000)

        let alerts = reader.object(root, "alerts", path: "alerts", known: ["water", "vehicle"])
        let water = reader.object(alerts, "water", path: "alerts.water", known: Self.waterKeys + ["sensors"])
        config.alerts.water = Self.waterSettings(
            water, path: "alerts.water", base: WaterAlertSettings(), reader: &reader)
        if let sensors = reader.object(
            water, "sensors", path: "alerts.water.sensors", known: water?["sensors"]?.object?.keys ?? [])
        {
            for (id, _) in sensors.members {
                let path = "alerts.water.sensors.\(id)"
                if SensorID(id) == nil {
                    reader.problem(path, "is not a valid sensor id (1 to 64 of A-Z a-z 0-9 _ . -)")
                }
                let override = reader.object(sensors, id, path: path, known: Self.waterKeys)
                config.alerts.waterSensors[id] = Self.waterSettings(
                    override, path: path, base: config.alerts.water, reader: &reader)
            }
        }
        let vehicle = reader.object(alerts, "vehicle", path: "alerts.vehicle", known: ["coolant_c"])
        config.alerts.coolantC = reader.number(
            vehicle, "coolant_c", path: "alerts.vehicle.coolant_c", default: 110, range: 50...200)

        parseUpstream(root, into: &config.upstream, reader: &reader)
        HTTPSettings.parse(root, into: &config.http, reader: &reader)
        OTASettings.parse(root, into: &config.ota, reader: &reader)
        PrivacySettings.parse(root, into: &config.privacy, reader: &reader)
        config.sensorSites = Self.parseSensorSites(root, reader: &reader)

        let log = reader.object(root, "log", path: "log", known: ["level", "stats_interval_s"])
        config.log.level = reader.choice(
            log, "level", path: "log.level", default: "info",
            allowed: ["trace", "debug", "info", "notice", "warning", "error", "critical"])
        config.log.statsIntervalS = reader.integer(
            log, "stats_interval_s", path: "log.stats_interval_s", default: 10, range: 0...86_400)
        return (config, reader.problems)
    }

    static func parseSensorSites(_ root: JSONObject, reader: inout ConfigReader) -> [GaugeSite] {
        guard let sensors = reader.object(root, "sensors", path: "sensors", known: root["sensors"]?.object?.keys ?? [])
        else { return [] }
        var sites: [GaugeSite] = []
        for (id, _) in sensors.members {
            let path = "sensors.\(id)"
            if SensorID(id) == nil { reader.problem(path, "is not a valid sensor id (1 to 64 of A-Z a-z 0-9 _ . -)") }
            let site = reader.object(sensors, id, path: path, known: ["lat", "lon", "radius_m"])
            guard site?["lat"] != nil, site?["lon"] != nil, site?["radius_m"] != nil else {
                reader.problem(path, "needs lat, lon and radius_m")
                continue
            }
            let lat = reader.number(site, "lat", path: "\(path).lat", default: .nan, range: -90...90)
            let lon = reader.number(site, "lon", path: "\(path).lon", default: .nan, range: -180...180)
            let radius = reader.number(
                site, "radius_m", path: "\(path).radius_m", default: .nan, range: 1...GaugeSite.maxRadiusM)
            guard lat.isFinite, lon.isFinite, radius.isFinite else { continue }
            sites.append(GaugeSite(sensor: id, position: GeoPoint(lat: lat, lon: lon), radiusM: radius))
        }
        return sites
    }

    /// `upstream.host` (one node) or `upstream.hosts` (a list of "host" or "host:port", an IPv6
    /// address in brackets), never both.
    static func parseNodes(_ object: JSONObject?, defaultPort: Int64, reader: inout ConfigReader) -> [Upstream.Node] {
        if let host = reader.string(object, "host", path: "upstream.host", default: nil) {
            if object?["hosts"] != nil, object?["hosts"] != .null {
                reader.problem("upstream.hosts", "set upstream.host (one node) or upstream.hosts (a list), not both")
            }
            guard !host.isEmpty else {
                reader.problem("upstream.host", "must not be empty")
                return []
            }
            return [Upstream.Node(host: host, port: defaultPort)]
        }
        guard let raw = object?["hosts"], raw != .null else { return [] }
        guard case .array(let entries) = raw else {
            reader.problem("upstream.hosts", "must be a list of \"host\" or \"host:port\" strings, got \(raw.typeName)")
            return []
        }
        var nodes: [Upstream.Node] = []
        for (position, entry) in entries.enumerated() {
            let path = "upstream.hosts[\(position)]"
            guard case .string(let text) = entry else {
                reader.problem(path, "must be a string \"host\" or \"host:port\", got \(entry.typeName)")
                continue
            }
            guard let node = Upstream.Node(parsing: text, defaultPort: defaultPort) else {
                reader.problem(path, "\"\(text)\" is not \"host\", \"host:port\" or \"[IPv6]:port\" (port 1 to 65535)")
                continue
            }
            if nodes.contains(node) { reader.problem(path, "\(node) is listed twice") }
            nodes.append(node)
        }
        return nodes
    }

    static func parseUpstream(_ root: JSONObject, into upstream: inout Upstream, reader: inout ConfigReader) {
        let object = reader.object(
            root, "upstream", path: "upstream",
            known: [
                "host", "hosts", "port", "client_id", "topic_prefix", "tls", "allow_insecure", "max_backlog_bytes",
                "max_rate_msgs_per_s", "status_interval_s", "keepalive_s", "reconnect_max_s", "connect_timeout_s",
            ])
        upstream.port = reader.integer(object, "port", path: "upstream.port", default: 8883, range: 1...65535)
        upstream.nodes = parseNodes(object, defaultPort: upstream.port, reader: &reader)
        upstream.reconnectMaxS = reader.integer(
            object, "reconnect_max_s", path: "upstream.reconnect_max_s", default: 5, range: 1...300)
        upstream.connectTimeoutS = reader.integer(
            object, "connect_timeout_s", path: "upstream.connect_timeout_s", default: 5, range: 1...120)
        upstream.clientID = reader.string(object, "client_id", path: "upstream.client_id", default: nil)
        upstream.topicPrefix = reader.string(object, "topic_prefix", path: "upstream.topic_prefix", default: "city")!
        if upstream.topicPrefix.isEmpty || upstream.topicPrefix.contains(where: { "+#".contains($0) })
            || upstream.topicPrefix.hasPrefix("/") || upstream.topicPrefix.hasSuffix("/")
        {
            reader.problem(
                "upstream.topic_prefix", "must be a plain topic prefix without + # or a leading or trailing /")
        }
        let tls = reader.object(object, "tls", path: "upstream.tls", known: ["ca_file", "cert_file", "key_file"])
        upstream.caFile = reader.string(tls, "ca_file", path: "upstream.tls.ca_file", default: nil)
        upstream.certFile = reader.string(tls, "cert_file", path: "upstream.tls.cert_file", default: nil)
        upstream.keyFile = reader.string(tls, "key_file", path: "upstream.tls.key_file", default: nil)
        upstream.allowInsecure = reader.boolean(
            object, "allow_insecure", path: "upstream.allow_insecure", default: false)
        upstream.maxBacklogBytes = reader.integer(
            object, "max_backlog_bytes", path: "upstream.max_backlog_bytes", default: upstream.maxBacklogBytes,
            range: 65_536...1_099_511_627_776)
        upstream.maxRateMsgsPerS = reader.integer(
            object, "max_rate_msgs_per_s", path: "upstream.max_rate_msgs_per_s", default: upstream.maxRateMsgsPerS,
            range: 1...100_000)
        upstream.statusIntervalS = reader.integer(
            object, "status_interval_s", path: "upstream.status_interval_s", default: 60, range: 1...86_400)
        upstream.keepAliveSeconds = reader.integer(
            object, "keepalive_s", path: "upstream.keepalive_s", default: 30, range: 5...3600)
        guard upstream.enabled else { return }
        let tlsComplete = upstream.caFile != nil && upstream.certFile != nil && upstream.keyFile != nil
        if !tlsComplete && !upstream.allowInsecure {
            reader.problem(
                "upstream.tls",
                "the upstream link requires mutual TLS: set ca_file, cert_file and key_file "
                    + "(bash Deploy/make-certs.sh DIR makes development ones), or set upstream.allow_insecure to true")
        }
        if let caFile = upstream.caFile {
            if upstream.certFile == nil || upstream.keyFile == nil {
                reader.problem(
                    "upstream.tls",
                    "cert_file and key_file are required with ca_file: the gateway authenticates with a client certificate"
                )
            }
            reader.checkReadable([
                ("upstream.tls.ca_file", upstream.caFile), ("upstream.tls.cert_file", upstream.certFile),
                ("upstream.tls.key_file", upstream.keyFile),
            ])
            let check = CertificateCheck.run(caFile: caFile, certFile: upstream.certFile, keyFile: upstream.keyFile)
            for finding in check.findings where finding.severity == .error {
                reader.problem("upstream.tls", finding.description)
            }
        }
    }

    static let waterKeys = [
        "warning_cm", "alarm_cm", "rise_cm_per_min", "rise_window_s", "hysteresis_cm", "dwell_s", "stale_after_s",
        "low_battery_v", "forecast_lead_min", "forecast_window_s",
    ]

    /// Water alert settings at `path`, each key defaulting to `base` (the defaults, or for a
    /// sensor override the gateway-wide values).
    static func waterSettings(
        _ object: JSONObject?, path: String, base: WaterAlertSettings, reader: inout ConfigReader
    ) -> WaterAlertSettings {
        var s = base
        s.warningCm = reader.number(
            object, "warning_cm", path: path + ".warning_cm", default: s.warningCm, range: -100...10_000)
        s.alarmCm = reader.number(
            object, "alarm_cm", path: path + ".alarm_cm", default: s.alarmCm, range: -100...10_000)
        s.riseCmPerMin = reader.number(
            object, "rise_cm_per_min", path: path + ".rise_cm_per_min", default: s.riseCmPerMin, range: 0.01...10_000)
        s.riseWindowS = reader.integer(
            object, "rise_window_s", path: path + ".rise_window_s", default: s.riseWindowS, range: 10...86_400)
        s.hysteresisCm = reader.number(
            object, "hysteresis_cm", path: path + ".hysteresis_cm", default: s.hysteresisCm, range: 0...1_000)
        s.dwellS = reader.integer(object, "dwell_s", path: path + ".dwell_s", default: s.dwellS, range: 0...86_400)
        s.staleAfterS = reader.integer(
            object, "stale_after_s", path: path + ".stale_after_s", default: s.staleAfterS, range: 10...604_800)
        s.lowBatteryV = reader.number(
            object, "low_battery_v", path: path + ".low_battery_v", default: s.lowBatteryV, range: 0...60)
        s.forecastLeadMin = reader.number(
            object, "forecast_lead_min", path: path + ".forecast_lead_min", default: s.forecastLeadMin,
            range: 1...1_440)
        s.forecastWindowS = reader.integer(
            object, "forecast_window_s", path: path + ".forecast_window_s", default: s.forecastWindowS,
            range: 300...86_400)
        if s.alarmCm <= s.warningCm {
            reader.problem(path + ".alarm_cm", "must be above warning_cm (\(s.warningCm)), got \(s.alarmCm)")
        }
        return s
    }

    /// Reads and parses a file; problems include a JSON syntax error with its byte offset.
    public static func load(path: String) -> (GatewayConfiguration, [ConfigProblem]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            return (
                GatewayConfiguration(),
                [ConfigProblem(path: path, message: "cannot read the file: \(String(cString: strerror(errno)))")]
            )
        }
        do {
            return parse(try JSONParser.parse(Array(data)))
        } catch {
            return (GatewayConfiguration(), [ConfigProblem(path: path, message: "not valid JSON: \(error)")])
        }
    }

    static func waterJSON(_ s: WaterAlertSettings) -> JSONObject {
        JSONObject([
            ("warning_cm", .double(s.warningCm)), ("alarm_cm", .double(s.alarmCm)),
            ("rise_cm_per_min", .double(s.riseCmPerMin)), ("rise_window_s", .int(s.riseWindowS)),
            ("hysteresis_cm", .double(s.hysteresisCm)), ("dwell_s", .int(s.dwellS)),
            ("stale_after_s", .int(s.staleAfterS)), ("low_battery_v", .double(s.lowBatteryV)),
            ("forecast_lead_min", .double(s.forecastLeadMin)), ("forecast_window_s", .int(s.forecastWindowS)),
            ("sensors", .object(JSONObject())),
        ])
    }

    /// The configuration as JSON, with every key: what `--print-default-config` prints.
    public var json: JSONValue {
        guard case .object(var document) = coreJSON else { return coreJSON }
        document["http"] = http.json(redacted: false)
        document["sensors"] = sensorsJSON
        document["ota"] = ota.json
        document["privacy"] = privacy.json
        return .object(document)
    }

    /// As `json`, with token hashes left out: what `GET /v1/config` shows an operator.
    public var redactedJSON: JSONValue {
        guard case .object(var document) = coreJSON else { return coreJSON }
        document["http"] = http.json(redacted: true)
        document["ota"] = ota.json
        document["privacy"] = privacy.json
        document["sensors"] = sensorsJSON
        return .object(document)
    }

    private var sensorsJSON: JSONValue {
        .object(
            JSONObject(
                sensorSites.map { site in
                    (
                        site.sensor,
                        .object(
                            JSONObject([
                                ("lat", .double(site.position.lat)), ("lon", .double(site.position.lon)),
                                ("radius_m", .double(site.radiusM)),
                            ]))
                    )
                }))
    }

    private var coreJSON: JSONValue {
        func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
        var broker = JSONObject([
            ("host", .string(self.broker.host)), ("port", .int(self.broker.port)),
            ("client_id", optional(self.broker.clientID)), ("username", optional(self.broker.username)),
            ("password_file", optional(self.broker.passwordFile)), ("keepalive_s", .int(self.broker.keepAliveSeconds)),
        ])
        broker["tls"] = .object(
            JSONObject([
                ("ca_file", optional(self.broker.caFile)), ("cert_file", optional(self.broker.certFile)),
                ("key_file", optional(self.broker.keyFile)),
            ]))
        return .object(
            JSONObject([
                ("gateway_id", .string(gatewayID)),
                ("broker", .object(broker)),
                (
                    "store",
                    .object(
                        JSONObject([
                            ("path", .string(store.path)), ("capacity_readings", .int(store.capacityReadings)),
                            ("capacity_events", .int(store.capacityEvents)),
                            ("capacity_rejects", .int(store.capacityRejects)),
                            ("flush_interval_ms", .int(store.flushIntervalMs)),
                            ("flush_max_readings", .int(store.flushMaxReadings)),
                            ("synchronous", .string(store.synchronous)),
                            ("max_devices", .int(store.maxDevices)),
                            ("max_file_bytes", .int(store.maxFileBytes)),
                            ("reserve_bytes", .int(store.reserveBytes)),
                        ]))
                ),
                (
                    "limits",
                    .object(
                        JSONObject([
                            ("max_payload_bytes", .int(limits.maxPayloadBytes)),
                            ("max_future_skew_ms", .int(limits.maxFutureSkewMs)),
                            ("inbound_queue", .int(limits.inboundQueue)),
                            ("device_rate_per_s", .double(limits.deviceRatePerS)),
                            ("device_burst", .int(limits.deviceBurst)),
                        ]))
                ),
                (
                    "aggregation",
                    .object(
                        JSONObject([
                            ("enabled", .bool(aggregation.enabled)), ("window_s", .int(aggregation.windowS)),
                            ("lateness_ms", .int(aggregation.latenessMs)),
                            ("retention_days", .int(aggregation.retentionDays)),
                            ("capacity_rows", .int(aggregation.capacityRows)),
                        ]))
                ),
                (
                    "alerts",
                    .object(
                        JSONObject([
                            ("water", .object(Self.waterJSON(alerts.water))),
                            ("vehicle", .object(JSONObject([("coolant_c", .double(alerts.coolantC))]))),
                        ]))
                ),
                (
                    "upstream",
                    .object(
                        JSONObject([
                            ("hosts", .array(upstream.nodes.map { .string($0.description) })),
                            ("port", .int(upstream.port)), ("reconnect_max_s", .int(upstream.reconnectMaxS)),
                            ("connect_timeout_s", .int(upstream.connectTimeoutS)),
                            ("client_id", upstream.clientID.map(JSONValue.string) ?? .null),
                            ("topic_prefix", .string(upstream.topicPrefix)),
                            (
                                "tls",
                                .object(
                                    JSONObject([
                                        ("ca_file", upstream.caFile.map(JSONValue.string) ?? .null),
                                        ("cert_file", upstream.certFile.map(JSONValue.string) ?? .null),
                                        ("key_file", upstream.keyFile.map(JSONValue.string) ?? .null),
                                    ]))
                            ),
                            ("allow_insecure", .bool(upstream.allowInsecure)),
                            ("max_backlog_bytes", .int(upstream.maxBacklogBytes)),
                            ("max_rate_msgs_per_s", .int(upstream.maxRateMsgsPerS)),
                            ("status_interval_s", .int(upstream.statusIntervalS)),
                            ("keepalive_s", .int(upstream.keepAliveSeconds)),
                        ]))
                ),
                (
                    "log",
                    .object(
                        JSONObject([("level", .string(log.level)), ("stats_interval_s", .int(log.statsIntervalS))]))
                ),
            ]))
    }
}

extension GatewayConfiguration.Upstream.Node {
    /// "host", "host:port" or "[IPv6]:port"; nil when the text is none of them.
    init?(parsing text: String, defaultPort: Int64) {
        var host = Substring(text)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = Int64(rest.dropFirst()) else { return nil }
                port = number
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard host.firstIndex(of: ":") == colon, let number = Int64(host[host.index(after: colon)...]) else {
                return nil
            }
            port = number
            host = host[..<colon]
        }
        guard !host.isEmpty, (1...65535).contains(port),
            !host.contains(where: { $0 == " " || $0 == "/" || $0 == "[" || $0 == "]" })
        else { return nil }
        self.init(host: String(host), port: port)
    }
}
