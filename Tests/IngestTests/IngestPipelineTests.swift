import Advisories
import Alerts
import Foundation
import Geo
import Ingest
import JSON
import Logging
import MQTT
import RingStore
import SQLite
import Synchronization
import Telemetry
import Testing

/// The ingest loop driven without a broker: messages go into the inbound buffer as the MQTT
/// client would put them, the pipeline commits them to a real store in a temporary folder,
/// and what it publishes and queues upstream is caught by closures.
@Suite struct IngestPipelineTests {
    /// What the pipeline published and queued upstream, in order, and how often it woke the
    /// forwarder.
    final class Published: Sendable {
        let messages = Mutex<[(topic: String, payload: String, retained: Bool)]>([])
        let queued = Mutex<[OutboxMessage]>([])
        let notified = Atomic<Int>(0)

        func add(_ topic: String, _ payload: [UInt8], retained: Bool) {
            messages.withLock { $0.append((topic, String(decoding: payload, as: UTF8.self), retained)) }
        }

        var all: [(topic: String, payload: String, retained: Bool)] { messages.withLock { $0 } }
    }

    struct Run {
        let directory: String
        let store: RingStore
        let metrics: IngestMetrics
        let published: Published
    }

    /// Pushes `messages`, closes the buffer and waits until the pipeline has committed them all.
    static func run(_ messages: [(String, String)], site: GaugeSite? = nil) throws -> Run {
        let directory = NSTemporaryDirectory() + "ingest-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var storeConfiguration = RingStore.Configuration(path: directory + "/store.db")
        storeConfiguration.synchronous = .normal
        storeConfiguration.reserveBytes = 0
        storeConfiguration.flushMaxReadings = 1000
        storeConfiguration.outboxGauge = OutboxGauge()
        let store = try RingStore(configuration: storeConfiguration, logger: Logger(level: .critical))
        var water = WaterAlertSettings()
        water.warningCm = 100
        water.alarmCm = 200
        water.dwellS = 0
        var advisories = AdvisoryEngine(idPrefix: "unit")
        if let site { _ = advisories.setSite(site, tsMs: 0) }
        let inbound = InboundBuffer(capacity: 10_000)
        let published = Published()
        let metrics = IngestMetrics()
        var configuration = IngestPipeline.Configuration()
        configuration.limits.maxPayloadBytes = 4096
        configuration.statsIntervalS = 0
        let pipeline = IngestPipeline(
            inbound: inbound, store: store, configuration: configuration,
            alerts: AlertEngine(waterDefaults: water, waterOverrides: [:], coolantLimitC: 110),
            forecasts: ForecastBoard(), advisories: advisories, siteMailbox: SiteMailbox(),
            publishRetained: { published.add($0, $1, retained: true) },
            publish: { published.add($0, $1, retained: false) },
            outbox: OutboxRoute(
                encode: { summary, _ in
                    let messages = summary.alerts.map {
                        OutboxMessage(priority: .alert, topic: "alerts", payload: Array($0.alertID.utf8))
                    }
                    published.queued.withLock { $0 += messages }
                    return messages
                },
                notify: { published.notified.add(1, ordering: .relaxed) }),
            metrics: metrics, logger: Logger(level: .critical))
        pipeline.start()
        for (topic, payload) in messages {
            let bytes = Array(payload.utf8)
            #expect(
                inbound.push(
                    InboundMessage(
                        topic: topic, payload: bytes, wireLength: bytes.count, qos: 1, retained: false,
                        receivedAtNanos: monotonicNanos())))
        }
        inbound.close()
        pipeline.waitUntilFinished()
        return Run(directory: directory, store: store, metrics: metrics, published: published)
    }

    @Test func goodAndBadInputAlertsAndTheOutbox() throws {
        let now = wallClockMs()
        let run = try Self.run([
            ("v1/water/drain-7/level", #"{"ts":\#(now),"seq":1,"level_cm":50}"#),
            ("v1/water/drain-7/level", #"{"ts":\#(now + 1000),"seq":2,"level_cm":250}"#),
            ("v1/water/drain-7/level", #"{"ts":\#(now + 2000),"seq":3,"level_cm":"high"}"#),
            ("v1/water/../level", #"{"ts":\#(now),"seq":1,"level_cm":1}"#),
            ("v1/obd/1HGCM82633A004352/pids", #"{"ts":\#(now),"seq":1,"pids":{"0D":"32"}}"#),
        ])
        defer { try? FileManager.default.removeItem(atPath: run.directory) }
        let snapshot = run.metrics.snapshot
        #expect(snapshot.messagesReceived == 5)
        #expect(snapshot.messagesStored == 3)
        #expect(snapshot.readingsStored == 3)
        #expect(snapshot.rejects.values.reduce(0, +) == 2, "\(snapshot.rejects)")
        #expect(snapshot.uncommittedMessages == 0)
        let database = try Database(path: run.directory + "/store.db", options: [.readOnly])
        #expect(try database.scalarInt("SELECT count(*) FROM readings_v WHERE device = 'drain-7'") == 2)
        #expect(try database.scalarInt("SELECT count(*) FROM rejects_v") == 2)
        #expect(try database.scalarInt("SELECT count(*) FROM alerts_active_v WHERE state = 'alarm'") == 1)
        // The level state is published retained once committed; the alarm went to the outbox
        // in the same transaction, and the forwarder was woken.
        let retained = run.published.all.filter { $0.retained && $0.topic == "v1/alerts/water/drain-7" }
        #expect(retained.last?.payload.contains(#""state":"alarm""#) == true, "\(run.published.all)")
        #expect(run.published.queued.withLock { $0.count } == 1)
        #expect(try database.scalarInt("SELECT count(*) FROM outbox_v WHERE topic = 'alerts'") == 1)
        #expect(run.published.notified.load(ordering: .relaxed) >= 1)
    }

    @Test func aVehicleInsideAFloodingGaugeIsAdvised() throws {
        let now = wallClockMs()
        let gauge = GeoPoint(lat: 3.1390, lon: 101.6869)
        let run = try Self.run(
            [
                ("v1/obd/1HGCM82633A004352/gps", #"{"ts":\#(now),"seq":1,"lat":3.1391,"lon":101.6869}"#),
                ("v1/water/drain-7/level", #"{"ts":\#(now),"seq":1,"level_cm":260}"#),
            ], site: GaugeSite(sensor: "drain-7", position: gauge, radiusM: 500))
        defer { try? FileManager.default.removeItem(atPath: run.directory) }
        let advisories = run.published.all.filter { $0.topic == "v1/advisory/1HGCM82633A004352" }
        #expect(advisories.count == 1)
        #expect(advisories.first?.retained == false)
        let advisory = try JSONParser.parse(Array((advisories.first?.payload ?? "").utf8))
        #expect(advisory["state"] == .string("alarm"))
        #expect(advisory["advisory_id"] == .string("unit-drain-7-\(now)-1HGCM82633A004352"))
        let database = try Database(path: run.directory + "/store.db", options: [.readOnly])
        #expect(try database.scalarInt("SELECT count(*) FROM advisories_told") == 1)
    }
}
