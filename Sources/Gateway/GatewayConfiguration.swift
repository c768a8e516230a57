public import API
public import Advisories
public import Alerts
import Crypto
import Geo
public import Ingest
public import JSON
public import RingStore
public import Settings
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
    /// The store's section, read into the store's own configuration.
    public var store = RingStore.Configuration()
    public var limits = IngestLimits()
    public var aggregation = RingStore.AggregationSettings()
    public var alerts = AlertSettings()
    public var upstream = Upstream()
    /// The REST API's section, read into the API's own configuration.
    public var http = APIConfiguration()
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

        Broker.section.read(root, "broker", path: "broker", into: &config.broker, reader: &reader)
        if let clientID = config.broker.clientID, clientID.isEmpty || clientID.utf8.count > 128 {
            reader.problem("broker.client_id", "must be 1 to 128 bytes")
        }
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

        RingStore.Configuration.read(root, into: &config.store, reader: &reader)

        IngestLimits.section.read(root, "limits", path: "limits", into: &config.limits, reader: &reader)

        RingStore.AggregationSettings.read(root, into: &config.aggregation, reader: &reader)

        let alerts = reader.object(root, "alerts", path: "alerts", known: ["water", "vehicle"])
        let water = reader.object(alerts, "water", path: "alerts.water", known: Self.water.names + ["sensors"])
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
                let override = reader.object(sensors, id, path: path, known: Self.water.names)
                config.alerts.waterSensors[id] = Self.waterSettings(
                    override, path: path, base: config.alerts.water, reader: &reader)
            }
        }
        AlertSettings.vehicle.read(alerts, "vehicle", path: "alerts.vehicle", into: &config.alerts, reader: &reader)

        parseUpstream(root, into: &config.upstream, reader: &reader)
        APIConfiguration.read(root, into: &config.http, reader: &reader)
        OTASettings.parse(root, into: &config.ota, reader: &reader)
        PrivacySettings.parse(root, into: &config.privacy, reader: &reader)
        config.sensorSites = Self.parseSensorSites(root, reader: &reader)

        Log.section.read(root, "log", path: "log", into: &config.log, reader: &reader)
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
        let object = Upstream.section.read(
            root, "upstream", path: "upstream", into: &upstream, reader: &reader, alsoKnown: ["host"])
        upstream.nodes = parseNodes(object, defaultPort: upstream.port, reader: &reader)
        if upstream.topicPrefix.isEmpty || upstream.topicPrefix.contains(where: { "+#".contains($0) })
            || upstream.topicPrefix.hasPrefix("/") || upstream.topicPrefix.hasSuffix("/")
        {
            reader.problem(
                "upstream.topic_prefix", "must be a plain topic prefix without + # or a leading or trailing /")
        }
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

    static let water = ConfigSection<WaterAlertSettings>([
        .number("warning_cm", \.warningCm, range: -100...10_000),
        .number("alarm_cm", \.alarmCm, range: -100...10_000),
        .number("rise_cm_per_min", \.riseCmPerMin, range: 0.01...10_000),
        .integer("rise_window_s", \.riseWindowS, range: 10...86_400),
        .number("hysteresis_cm", \.hysteresisCm, range: 0...1_000),
        .integer("dwell_s", \.dwellS, range: 0...86_400),
        .integer("stale_after_s", \.staleAfterS, range: 10...604_800),
        .number("low_battery_v", \.lowBatteryV, range: 0...60),
        .number("forecast_lead_min", \.forecastLeadMin, range: 1...1_440),
        .integer("forecast_window_s", \.forecastWindowS, range: 300...86_400),
    ])

    /// Water alert settings at `path`, each key defaulting to `base` (the defaults, or for a
    /// sensor override the gateway-wide values).
    static func waterSettings(
        _ object: JSONObject?, path: String, base: WaterAlertSettings, reader: inout ConfigReader
    ) -> WaterAlertSettings {
        var s = base
        water.readKeys(object, path: path, into: &s, reader: &reader)
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
        var object = water.json(s)
        object["sensors"] = .object(JSONObject())
        return object
    }

    /// The configuration as JSON, with every key: what `--print-default-config` prints.
    public var json: JSONValue {
        guard case .object(var document) = coreJSON else { return coreJSON }
        document["http"] = http.settingsJSON(redacted: false)
        document["sensors"] = sensorsJSON
        document["ota"] = ota.json
        document["privacy"] = privacy.json
        return .object(document)
    }

    /// As `json`, with token hashes left out: what `GET /v1/config` shows an operator.
    public var redactedJSON: JSONValue {
        guard case .object(var document) = coreJSON else { return coreJSON }
        document["http"] = http.settingsJSON(redacted: true)
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
        .object(
            JSONObject([
                ("gateway_id", .string(gatewayID)),
                ("broker", .object(Broker.section.json(broker))),
                ("store", .object(RingStore.Configuration.section.json(store))),
                ("limits", .object(IngestLimits.section.json(limits))),
                ("aggregation", .object(RingStore.AggregationSettings.section.json(aggregation))),
                (
                    "alerts",
                    .object(
                        JSONObject([
                            ("water", .object(Self.waterJSON(alerts.water))),
                            ("vehicle", .object(AlertSettings.vehicle.json(alerts))),
                        ]))
                ),
                ("upstream", .object(Upstream.section.json(upstream))),
                ("log", .object(Log.section.json(log))),
            ]))
    }
}

extension GatewayConfiguration.Broker {
    static let section = ConfigSection<Self>([
        .text("host", \.host), .integer("port", \.port, range: 1...65535), .optionalText("client_id", \.clientID),
        .optionalText("username", \.username), .optionalText("password_file", \.passwordFile),
        .integer("keepalive_s", \.keepAliveSeconds, range: 5...3600),
        .group(
            "tls",
            [
                .optionalText("ca_file", \.caFile), .optionalText("cert_file", \.certFile),
                .optionalText("key_file", \.keyFile),
            ]
        ),
    ])
}

extension GatewayConfiguration.AlertSettings {
    static let vehicle = ConfigSection<Self>([.number("coolant_c", \.coolantC, range: 50...200)])
}

extension GatewayConfiguration.Upstream {
    static let section = ConfigSection<Self>([
        // Read after `port` (their default port) by `parseNodes`, with `host`.
        .custom("hosts", read: { _, _, _, _ in }, write: { .array($0.nodes.map { .string($0.description) }) }),
        .integer("port", \.port, range: 1...65535),
        .integer("reconnect_max_s", \.reconnectMaxS, range: 1...300),
        .integer("connect_timeout_s", \.connectTimeoutS, range: 1...120),
        .optionalText("client_id", \.clientID), .text("topic_prefix", \.topicPrefix),
        .group(
            "tls",
            [
                .optionalText("ca_file", \.caFile), .optionalText("cert_file", \.certFile),
                .optionalText("key_file", \.keyFile),
            ]
        ),
        .flag("allow_insecure", \.allowInsecure),
        .integer("max_backlog_bytes", \.maxBacklogBytes, range: 65_536...1_099_511_627_776),
        .integer("max_rate_msgs_per_s", \.maxRateMsgsPerS, range: 1...100_000),
        .integer("status_interval_s", \.statusIntervalS, range: 1...86_400),
        .integer("keepalive_s", \.keepAliveSeconds, range: 5...3600),
    ])
}

extension GatewayConfiguration.Log {
    static let section = ConfigSection<Self>([
        .choice("level", \.level, allowed: ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
        .integer("stats_interval_s", \.statsIntervalS, range: 0...86_400),
    ])
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
