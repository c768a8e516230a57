import API
import Advisories
import Alerts
import Campaigns
import Crypto
import Dispatch
import Fleet
public import Ingest
import Lifecycle
public import Logging
import MQTT
import Privacy
import RingStore
import Synchronization
import Systemd
import Telemetry
import Upstream
import Version

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// gatewayd's wiring and lifecycle: store, MQTT client, ingest pipeline, upstream forwarder.
///
/// Start order is store → upstream → pipeline → MQTT (nothing arrives before there is
/// somewhere to put it); stop is the reverse: MQTT disconnects first so no new message is
/// acknowledged, the pipeline commits everything already acknowledged, the forwarder stops
/// (what it has not sent stays in the outbox), then the store is checkpointed.
public final class Gateway: @unchecked Sendable {
    public let configuration: GatewayConfiguration
    public let metrics = IngestMetrics()
    private let logger: Logger
    private let store: RingStore
    private let client: MQTTClient
    private let pipeline: IngestPipeline
    /// Started in this order, stopped in the reverse one: the forwarder before the ingest thread
    /// that feeds its outbox, that before the broker client that feeds it, then OTA and the API.
    private let services: ServiceGroup
    private let upstream: UpstreamForwarder?
    let outboxGauge: OutboxGauge?
    private let api: APIServer?
    private let ota: OTAService?
    private let fleet: FleetLink?
    private let rates = RateMeter()
    private let startedMs = Int64(Date().timeIntervalSince1970 * 1000)
    private var rateTimer: (any DispatchSourceTimer)?
    private var watchdogTimer: (any DispatchSourceTimer)?
    private let notifier = ServiceNotifier(environment: ProcessInfo.processInfo.environment)
    private let statusSource = StatusSource()
    private let siteMailbox = SiteMailbox()
    private let erasures = ErasureMailbox()
    private let forecasts = ForecastBoard()
    private let httpCertificateExpiresMs: Int64?

    /// The topic filters the gateway subscribes to (QoS 1).
    public static let subscriptions = ["v1/obd/#", "v1/water/#"]

    /// Where the gateway announces itself: `{"state":"online"|"offline"}`, retained.
    public static func statusTopic(gatewayID: String) -> String { "v1/gateway/\(gatewayID)/status" }

    /// Opens the store; a damaged file is moved aside and a fresh one created, so a board with
    /// a bad file keeps ingesting (what the old file held is kept for recovery, not lost).
    private static func openStore(_ configuration: RingStore.Configuration, logger: Logger) throws -> RingStore {
        let failure: StoreError
        do {
            return try RingStore(configuration: configuration, logger: logger)
        } catch {
            failure = error
        }
        guard failure.sqliteError?.isCorruption == true else { throw failure }
        do {
            let error = failure
            let movedTo = try RingStore.moveAside(path: configuration.path, nowMs: wallClockMs())
            logger.critical(
                "store_corrupt_moved_aside",
                [
                    ("store.path", configuration.path), ("moved_to", movedTo), ("error", error.description),
                    ("detail", "a fresh store was created; recover old rows with: sqlite3 \(movedTo) .recover"),
                ])
            return try RingStore(configuration: configuration, logger: logger)
        }
    }

    public init(configuration: GatewayConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger.with("gateway.id", configuration.gatewayID)
        let directory = URL(fileURLWithPath: configuration.store.path).deletingLastPathComponent().path
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        // The `store` and `aggregation` sections are the store's own; what it needs of the
        // others it is told here.
        var storeConfiguration = configuration.store
        storeConfiguration.alertIDPrefix = configuration.gatewayID
        storeConfiguration.positionRetentionMs = configuration.privacy.positionRetentionS * 1000
        let identity = UpstreamIdentity(
            gatewayID: configuration.gatewayID,
            pseudonyms: try Self.makePseudonymizer(configuration, directory: directory))
        if configuration.upstream.enabled {
            let gauge = OutboxGauge()
            outboxGauge = gauge
            storeConfiguration.outboxGauge = gauge
            storeConfiguration.outboxLimitBytes = configuration.upstream.maxBacklogBytes
        } else {
            outboxGauge = nil
        }
        store = try Self.openStore(storeConfiguration, logger: self.logger)
        upstream = try Self.makeUpstream(
            configuration, gauge: outboxGauge, store: store, metrics: metrics, logger: self.logger)

        var mqtt = MQTTClient.Configuration(clientID: configuration.clientID)
        mqtt.host = configuration.broker.host
        mqtt.port = Int(configuration.broker.port)
        mqtt.username = configuration.broker.username
        if let passwordFile = configuration.broker.passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw GatewayError.unreadable(path: passwordFile, key: "broker.password_file")
            }
            mqtt.password = text.trimming(while: \.isNewline)
        }
        if let caFile = configuration.broker.caFile {
            mqtt.tls = .init(
                caFile: caFile, certFile: configuration.broker.certFile, keyFile: configuration.broker.keyFile)
        }
        mqtt.keepAliveSeconds = Int32(configuration.broker.keepAliveSeconds)
        mqtt.cleanSession = false
        mqtt.subscriptions = Self.subscriptions.map { (filter: $0, qos: 1) }
        // Retained, so a dashboard or a second gateway learns at once whether this one is up.
        let statusTopic = Self.statusTopic(gatewayID: configuration.gatewayID)
        mqtt.will = .init(topic: statusTopic, payload: Array(#"{"state":"offline"}"#.utf8), qos: 1, retain: true)
        mqtt.birth = .init(
            topic: statusTopic, payload: Array(#"{"state":"online","version":"\#(GatewayVersion.current)"}"#.utf8),
            qos: 1, retain: true)
        mqtt.inboundCapacity = configuration.limits.inboundQueue
        mqtt.maxInboundPayloadBytes = configuration.limits.maxPayloadBytes
        client = try MQTTClient(configuration: mqtt, logger: self.logger)

        var alerts = AlertEngine(
            waterDefaults: configuration.alerts.water, waterOverrides: configuration.alerts.waterSensors,
            coolantLimitC: configuration.alerts.coolantC)
        alerts.restore(try store.activeAlerts())
        // The trend and rate of rise start from the stored levels, not from nothing.
        alerts.warm(try store.recentWaterLevels(sinceMs: wallClockMs() - alerts.warmWindowMs), nowMs: wallClockMs())
        for sensor in alerts.waterSensors { forecasts.set(sensor, alerts.forecast(sensor: sensor)) }
        // Gauge sites: configured ones are (re)written at every start; ones set through the API stay.
        try store.saveSensorSites(configuration.sensorSites, source: "config", nowMs: wallClockMs())
        var advisories = AdvisoryEngine(idPrefix: configuration.gatewayID)
        for site in try store.sensorSites() { _ = advisories.setSite(site, tsMs: 0) }
        // Incidents that were running when the gateway stopped go on, under the same advisory
        // ids. Vehicles already told are not told again and get the `cleared` when it ends.
        // The incident began when its first vehicle was told (the alert's `since` moves when
        // warning escalates to alarm), else when the alert was raised.
        let running = try store.activeFloodIncidents()
        let told = try store.advisedVehicles()
        let startedMs = Dictionary(told.map { ($0.sensor, $0.incidentStartMs) }, uniquingKeysWith: { a, _ in a })
        for incident in running {
            _ = advisories.gaugeChanged(
                sensor: incident.sensor, state: incident.alarm ? .alarm : .warning, levelCm: incident.levelCm,
                tsMs: startedMs[incident.sensor] ?? incident.sinceMs)
        }
        for vehicle in told {
            advisories.restoreAdvised(
                sensor: vehicle.sensor, incidentStartMs: vehicle.incidentStartMs, vin: vehicle.vin,
                distanceM: vehicle.distanceM)
        }
        try store.forgetAdvisedOfEndedIncidents()
        let ota = try Self.makeOTA(configuration, broker: mqtt, logger: self.logger)
        self.ota = ota
        fleet = try Self.makeFleet(configuration, ota: ota, logger: self.logger)
        let client = client
        let publishLogger = self.logger
        var pipelineConfiguration = IngestPipeline.Configuration()
        pipelineConfiguration.limits = configuration.limits
        pipelineConfiguration.statsIntervalS = configuration.log.statsIntervalS
        let upstream = upstream
        pipeline = IngestPipeline(
            inbound: client.inbound, store: store, configuration: pipelineConfiguration,
            alerts: alerts, forecasts: forecasts, advisories: advisories, siteMailbox: siteMailbox,
            erasures: erasures,
            forgetElsewhere: { [logger = self.logger] vin in
                guard let ota else { return 0 }
                do {
                    return try ota.forget(vin: vin)
                } catch {
                    // The store keeps the erasure pending: the next start tries again.
                    logger.error("ota_forget_failed", [("error", "\(error)")])
                    return nil
                }
            },
            publishRetained: { topic, payload in
                do {
                    try client.publish(topic: topic, payload: payload, qos: 1, retain: true)
                } catch {
                    publishLogger.warning("alert_state_publish_failed", [("mqtt.topic", topic), ("error", "\(error)")])
                }
            },
            publish: { topic, payload in
                do {
                    try client.publish(topic: topic, payload: payload, qos: 1, retain: false)
                } catch {
                    publishLogger.warning("advisory_publish_failed", [("mqtt.topic", topic), ("error", "\(error)")])
                }
            },
            outbox: upstream.map { forwarder in
                OutboxRoute(
                    encode: { summary, batch in
                        UpstreamMessages.encode(summary: summary, batch: batch, identity: identity)
                    },
                    notify: { forwarder.notify() },
                    erasure: { vin, sinceMs in
                        UpstreamMessages.erasure(of: vin, sinceMs: sinceMs, nowMs: wallClockMs(), identity: identity)
                    })
            },
            metrics: metrics, logger: self.logger)
        api = try Self.makeAPI(
            configuration, statusSource: statusSource, latest: store.latest,
            openWindows: configuration.aggregation.enabled ? store.openWindows : nil, siteMailbox: siteMailbox,
            erasures: erasures, forecasts: forecasts, ota: ota, logger: self.logger)
        if let cert = configuration.http.tlsCertFile,
            let seconds = CertificateCheck.run(caFile: cert, certFile: cert, keyFile: configuration.http.tlsKeyFile)
                .secondsToExpiry
        {
            httpCertificateExpiresMs = wallClockMs() + seconds * 1000
        } else {
            httpCertificateExpiresMs = nil
        }
        let parts: [(any Service)?] = [upstream, pipeline, client, ota, fleet, api]
        services = ServiceGroup(parts.compactMap { $0 }, logger: self.logger)
        statusSource.attach(self)
    }

    /// The REST API, when `http.enabled`. Its status closure reads the gateway's counters
    /// and connections on each request, so the API module knows nothing of the gateway's types.
    private static func makeAPI(
        _ configuration: GatewayConfiguration, statusSource: StatusSource, latest: LatestValues,
        openWindows: OpenWindows?, siteMailbox: SiteMailbox, erasures: ErasureMailbox, forecasts: ForecastBoard,
        ota: OTAService?, logger: Logger
    ) throws -> APIServer? {
        guard configuration.http.enabled else { return nil }
        // The `http` section is the API's own; what it reports of the other sections it is told once.
        var api = configuration.http
        api.waterAlerts = configuration.alerts.water
        api.waterAlertOverrides = configuration.alerts.waterSensors
        api.aggregationWindowMs = configuration.aggregation.enabled ? configuration.aggregation.windowMs : nil
        api.aggregationLatenessMs = configuration.aggregation.latenessMs
        api.outboxLimitBytes = configuration.upstream.enabled ? configuration.upstream.maxBacklogBytes : 0
        api.positionRetentionS = configuration.privacy.positionRetentionS
        if api.tokens.isEmpty {
            logger.warning(
                "http_no_tokens",
                [
                    (
                        "detail",
                        "http.tokens is empty: every route but the open ones answers 401; gwctl token new makes one"
                    )
                ])
        }
        let service = APIService(
            configuration: api, storePath: configuration.store.path, latest: latest, openWindows: openWindows,
            setSensorSite: { siteMailbox.submit($0) == true },
            forgetVehicle: { erasures.submit(ErasureRequest(vin: $0, requestedBy: $1), timeout: 60) },
            forecasts: forecasts, ota: ota,
            logger: logger,
            status: { statusSource.read() }, configurationDocument: configuration.redactedJSON)
        return try APIServer(service: service, logger: logger)
    }

    /// OTA distribution over its own connection to the device broker (`<client id>-ota`), so
    /// firmware blocks never queue behind telemetry acknowledgements or the reverse.
    private static func makeOTA(
        _ configuration: GatewayConfiguration, broker: MQTTClient.Configuration, logger: Logger
    ) throws -> OTAService? {
        guard configuration.ota.enabled else { return nil }
        // Same broker, credentials and TLS; its own id, no will or birth (the gateway's status is
        // the telemetry connection's), its own subscriptions (set by the service).
        var mqtt = broker
        mqtt.clientID = broker.clientID + "-ota"
        mqtt.will = nil
        mqtt.birth = nil
        mqtt.maxInflightMessages = 1000
        let directory =
            configuration.ota.directory
            ?? URL(fileURLWithPath: configuration.store.path).deletingLastPathComponent().appendingPathComponent("ota")
            .path
        if configuration.ota.trustedKeys.isEmpty {
            logger.warning(
                "ota_no_trusted_keys",
                [
                    (
                        "detail",
                        "ota.trusted_keys is empty: every manifest upload is refused; gwctl ota keygen makes a key"
                    )
                ])
        }
        return try OTAService(configuration: configuration.ota, directory: directory, mqtt: mqtt, logger: logger)
    }

    /// Fleet OTA (`ota.fleet`): a second connection to the city broker with the upstream
    /// link's nodes and certificate, so releases and orders reach a board nobody can dial into.
    private static func makeFleet(_ configuration: GatewayConfiguration, ota: OTAService?, logger: Logger) throws
        -> FleetLink?
    {
        let settings = configuration.upstream
        guard configuration.ota.fleet, let ota else { return nil }
        guard configuration.upstream.enabled, !settings.nodes.isEmpty else {
            logger.warning("fleet_without_upstream", [("detail", "ota.fleet needs the upstream section: it is off")])
            return nil
        }
        let mqtt = settings.mqtt(
            clientID: (settings.clientID ?? "telemetry-gateway-\(configuration.gatewayID)") + "-ota")
        let fleet = FleetLink.Configuration(
            prefix: settings.topicPrefix, gatewayID: configuration.gatewayID, mqtt: mqtt)
        return try FleetLink(configuration: fleet, ota: ota, logger: logger)
    }

    /// Vehicles' names upstream: keyed pseudonyms unless `privacy.upstream_vin` is `plain`, or
    /// there is no upstream link (then no secret is made either).
    private static func makePseudonymizer(_ configuration: GatewayConfiguration, directory: String) throws
        -> Pseudonymizer?
    {
        guard configuration.upstream.enabled, configuration.privacy.pseudonymsUpstream else { return nil }
        let path =
            configuration.privacy.pseudonymSecretFile
            ?? URL(fileURLWithPath: directory.isEmpty ? "." : directory).appendingPathComponent("pseudonym.key").path
        let secret = try Pseudonymizer.loadOrCreateSecret(at: path)
        return Pseudonymizer(secret: secret, periodDays: configuration.privacy.pseudonymPeriodDays)
    }

    /// The upstream link, after its TLS material passed the security checks.
    private static func makeUpstream(
        _ configuration: GatewayConfiguration, gauge: OutboxGauge?, store: RingStore, metrics: IngestMetrics,
        logger: Logger
    ) throws -> UpstreamForwarder? {
        let settings = configuration.upstream
        guard let first = settings.nodes.first, let gauge else { return nil }
        let prefix = "\(settings.topicPrefix)/\(configuration.gatewayID)"
        var mqtt = settings.mqtt(clientID: settings.clientID ?? "telemetry-gateway-\(configuration.gatewayID)")
        mqtt.cleanSession = true
        mqtt.maxInflightMessages = UInt32(settings.window)
        mqtt.will = .init(topic: "\(prefix)/status", payload: Array(#"{"state":"offline"}"#.utf8), qos: 1, retain: true)
        if settings.caFile == nil {
            logger.warning(
                "upstream_insecure",
                [
                    (
                        "detail",
                        "upstream.allow_insecure is set: the link to \(first) is plaintext and unauthenticated"
                    )
                ])
        }
        let client = try MQTTClient(configuration: mqtt, logger: logger.with("link", "upstream"))
        let outbox = try OutboxReader(path: configuration.store.path, gauge: gauge)
        let forwarder = UpstreamForwarder(
            configuration: settings, gatewayID: configuration.gatewayID, client: client, outbox: outbox, gauge: gauge,
            logger: logger,
            health: {
                let snapshot = metrics.snapshot
                return [
                    ("readings", .int(snapshot.readingsStored)), ("rejects", .int(snapshot.rejectsTotal)),
                    ("seq_gaps_opened", .int(snapshot.seqGapsOpened)),
                ]
            })
        forwarder.checkCertificates()
        return forwarder
    }

    /// Starts everything; throws when the API cannot listen (the address is taken or invalid).
    public func start() throws {
        try services.start()
        startRateSampling()
        startWatchdog()
        // STATUS= is the rate timer's alone (broker connected or not): a STATUS here could
        // overwrite the one it already sent.
        notifier.notify("READY=1")
        logger.info(
            "gateway_started",
            [
                ("mqtt.broker", "\(configuration.broker.host):\(configuration.broker.port)"),
                ("store.path", configuration.store.path),
            ])
    }

    /// Stops taking messages, commits everything already taken, checkpoints the store.
    public func stop() {
        logger.info("gateway_stopping")
        notifier.notify("STOPPING=1\nSTATUS=committing what was acknowledged")
        watchdogTimer?.cancel()
        rateTimer?.cancel()
        services.stop()
        do {
            try store.checkpoint()
        } catch {
            logger.error("checkpoint_failed", [("error", error.description)])
        }
        let snapshot = metrics.snapshot
        logger.info(
            "gateway_stopped",
            [("messages", String(snapshot.messagesReceived)), ("readings", String(snapshot.readingsStored))])
    }

    /// Runs until SIGTERM or SIGINT, then stops cleanly.
    public func runUntilSignalled() throws {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let stop = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "signals")
        let sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                stop.signal()
            }
            source.resume()
            return source
        }
        do {
            try start()
        } catch {
            self.stop()
            throw error
        }
        stop.wait()
        logger.info("signal_received")
        self.stop()
        for source in sources { source.cancel() }
    }
}

extension Gateway {
    /// What the API reports about this gateway right now.
    func liveStatus() -> LiveStatus {
        let snapshot = metrics.snapshot
        var status = LiveStatus()
        status.version = GatewayVersion.current
        status.gatewayID = configuration.gatewayID
        status.startedMs = startedMs
        status.brokerConnected = client.isConnected
        status.upstreamConfigured = upstream != nil
        status.upstreamConnected = upstream?.isConnected ?? false
        status.upstreamNode = upstream?.node
        status.upstreamFailovers = Int64(upstream?.failovers ?? 0)
        status.ingest = snapshot
        status.outboxBacklogMessages = outboxGauge?.backlogMessages ?? 0
        status.outboxBacklogBytes = outboxGauge?.backlogBytes ?? 0
        if let expiry = upstream?.certificateExpirySeconds { status.certificateExpiry["upstream"] = expiry }
        if let expires = httpCertificateExpiresMs {
            status.certificateExpiry["http"] = (expires - wallClockMs()) / 1000
        }
        status.flushBatchReadings = metrics.flushBatchReadings.snapshot
        status.flushSeconds = metrics.flushSeconds.snapshot
        let rate = rates.rates()
        status.readingsPerSecond = rate.readings
        status.outboxBytesPerSecond = rate.outboxBytes
        return status
    }

    /// Samples the counters every 2 s so health can report rates over the last minute (and a
    /// first rate two seconds after start).
    /// Pings systemd's watchdog at half its interval, but only while the ingest loop goes
    /// round: a commit that keeps failing or a stuck thread stops the pings, and systemd
    /// restarts gatewayd (`WatchdogSec=`, `Restart=on-failure`).
    func startWatchdog() {
        guard notifier.isEnabled, let interval = notifier.watchdogIntervalNanos else { return }
        let period = max(interval / 2, 10_000_000)
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "watchdog"))
        timer.schedule(deadline: .now(), repeating: .nanoseconds(Int(period)))
        let (pipeline, notifier, logger) = (pipeline, notifier, logger)
        let withheld = Atomic<Bool>(false)
        timer.setEventHandler {
            let age = monotonicNanos() &- pipeline.heartbeat.load(ordering: .relaxed)
            if age < period {
                notifier.notify("WATCHDOG=1")
                if withheld.exchange(false, ordering: .relaxed) { logger.notice("watchdog_resumed") }
            } else if !withheld.exchange(true, ordering: .relaxed) {
                logger.error(
                    "watchdog_withheld",
                    [
                        ("ingest_stalled_ms", String(age / 1_000_000)),
                        ("detail", "the ingest loop is not going round; systemd restarts gatewayd if it stays so"),
                    ])
            }
        }
        timer.resume()
        watchdogTimer = timer
        logger.info("watchdog_enabled", [("interval_ms", String(interval / 1_000_000))])
    }

    func startRateSampling() {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "rates"))
        let metrics = metrics
        let gauge = outboxGauge
        let rates = rates
        timer.schedule(deadline: .now(), repeating: .seconds(2))
        // READY means gatewayd can take readings, not that its broker is up (it reconnects by
        // itself, and the broker queues for it): `systemctl status` shows which, as health does.
        let (client, notifier) = (client, notifier)
        var lastConnected: Bool?
        timer.setEventHandler {
            rates.sample(readings: metrics.snapshot.readingsStored, outboxBytes: gauge?.backlogBytes ?? 0)
            let connected = client.isConnected
            if connected != lastConnected {
                lastConnected = connected
                notifier.notify(
                    connected
                        ? "STATUS=ingesting; broker connected"
                        : "STATUS=degraded: broker unreachable, reconnecting (health answers 503)")
            }
        }
        timer.resume()
        rateTimer = timer
    }
}

/// Start-up failures that are not the store's or the broker's.
public enum GatewayError: Error, CustomStringConvertible {
    case unreadable(path: String, key: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let key):
            return "\(key): cannot read \(path); check the path and that gatewayd's user may read it"
        }
    }
}
