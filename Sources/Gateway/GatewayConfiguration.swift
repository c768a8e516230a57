public import API
public import Advisories
public import Alerts
public import Campaigns
import Geo
public import Ingest
public import JSON
public import Privacy
public import RingStore
public import Settings
import Telemetry
public import Upstream

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

    public struct Log: Sendable {
        public var level = "info"
        public var statsIntervalS: Int64 = 10
    }

    public var gatewayID = "gw-01"
    public var broker = Broker()
    /// The store's section, read into the store's own configuration.
    public var store = RingStore.Configuration()
    public var limits = IngestLimits()
    /// The `aggregation` section: the store's, kept in its configuration.
    public var aggregation: RingStore.AggregationSettings {
        get { store.aggregation }
        set { store.aggregation = newValue }
    }
    public var alerts = AlertSettings()
    /// The upstream link's section, read into the forwarder's own configuration.
    public var upstream = UpstreamForwarder.Configuration()
    /// The REST API's section, read into the API's own configuration.
    public var http = APIConfiguration()
    /// The OTA service's section, read into its own configuration.
    public var ota = OTAService.Configuration()
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
        let water = reader.object(
            alerts, "water", path: "alerts.water", known: WaterAlertSettings.section.names + ["sensors"])
        config.alerts.water = WaterAlertSettings.read(
            water, path: "alerts.water", base: WaterAlertSettings(), reader: &reader)
        if let sensors = reader.object(
            water, "sensors", path: "alerts.water.sensors", known: water?["sensors"]?.object?.keys ?? [])
        {
            for (id, _) in sensors.members {
                let path = "alerts.water.sensors.\(id)"
                if SensorID(id) == nil {
                    reader.problem(path, "is not a valid sensor id (1 to 64 of A-Z a-z 0-9 _ . -)")
                }
                let override = reader.object(sensors, id, path: path, known: WaterAlertSettings.section.names)
                config.alerts.waterSensors[id] = WaterAlertSettings.read(
                    override, path: path, base: config.alerts.water, reader: &reader)
            }
        }
        AlertSettings.vehicle.read(alerts, "vehicle", path: "alerts.vehicle", into: &config.alerts, reader: &reader)

        UpstreamForwarder.Configuration.read(root, into: &config.upstream, reader: &reader)
        APIConfiguration.read(root, into: &config.http, reader: &reader)
        OTAService.Configuration.read(root, into: &config.ota, reader: &reader)
        PrivacySettings.section.read(root, "privacy", path: "privacy", into: &config.privacy, reader: &reader)
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

    /// `alerts.water` with its per-sensor overrides, in the order of their ids.
    private var waterJSON: JSONObject {
        var object = WaterAlertSettings.section.json(alerts.water)
        object["sensors"] = .object(
            JSONObject(
                alerts.waterSensors.sorted { $0.key < $1.key }.map {
                    ($0.key, .object(WaterAlertSettings.section.json($0.value)))
                }))
        return object
    }

    /// The configuration as JSON, with every key: what `--print-default-config` prints.
    public var json: JSONValue {
        guard case .object(var document) = coreJSON else { return coreJSON }
        document["http"] = http.settingsJSON(redacted: false)
        document["sensors"] = sensorsJSON
        document["ota"] = .object(OTAService.Configuration.section.json(ota))
        document["privacy"] = .object(PrivacySettings.section.json(privacy))
        return .object(document)
    }

    /// As `json`, with token hashes left out: what `GET /v1/config` shows an operator.
    public var redactedJSON: JSONValue {
        guard case .object(var document) = coreJSON else { return coreJSON }
        document["http"] = http.settingsJSON(redacted: true)
        document["ota"] = .object(OTAService.Configuration.section.json(ota))
        document["privacy"] = .object(PrivacySettings.section.json(privacy))
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
                            ("water", .object(waterJSON)),
                            ("vehicle", .object(AlertSettings.vehicle.json(alerts))),
                        ]))
                ),
                ("upstream", .object(UpstreamForwarder.Configuration.section.json(upstream))),
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

extension GatewayConfiguration.Log {
    static let section = ConfigSection<Self>([
        .choice("level", \.level, allowed: ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
        .integer("stats_interval_s", \.statsIntervalS, range: 0...86_400),
    ])
}
