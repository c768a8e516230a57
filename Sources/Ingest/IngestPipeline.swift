public import Advisories
public import Alerts
import Dispatch
import Geo
import JSON
public import Lifecycle
public import Logging
public import MQTT
public import RingStore
public import Synchronization
public import Telemetry
import Threads

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The ingest thread: takes messages from the MQTT inbound buffer, decodes them, and commits
/// them to the ring store in batches.
///
/// A batch is committed when it holds `flushMaxReadings` readings or when its oldest message
/// has waited `flushInterval`, whichever comes first. That interval bounds what a kill -9 can
/// lose: libmosquitto acknowledged those messages (PUBACK) before handing them over, so the
/// devices will not resend them; the loss shows up later as per-device seq gaps.
public final class IngestPipeline: @unchecked Sendable {
    /// The batch's bounds (`store.flush_interval_ms`, `store.flush_max_readings`) are the
    /// store's configuration, read from it: they bound what a kill -9 loses from the store.
    public struct Configuration: Sendable {
        public var limits = IngestLimits()
        /// How often the loop logs its counters (`log.stats_interval_s`); 0: never.
        public var statsIntervalS: Int64 = 10

        public init() {}
    }

    private let inbound: InboundBuffer
    private let store: RingStore
    private let decoder: Decoder
    private let configuration: Configuration
    private let flushIntervalNanos: UInt64
    private let flushMaxReadings: Int
    private let statsIntervalNanos: UInt64
    private let metrics: IngestMetrics
    private let logger: Logger
    private let finished = DispatchSemaphore(value: 0)
    /// When the loop last went round (monotonic ns): stale while a commit keeps failing or the
    /// thread is stuck, which is what the systemd watchdog must notice.
    public let heartbeat = Atomic<UInt64>(0)
    private var rejectLog = RejectLogLimiter()
    private var alerts: AlertEngine
    /// Level states to publish (retained) once the batch that decided them is committed.
    private var pendingLevels: [String: AlertEngine.LevelPublication] = [:]
    private let publishRetained: @Sendable (String, [UInt8]) -> Void
    /// Publishes QoS 1, not retained (advisories to vehicles).
    private let publish: @Sendable (String, [UInt8]) -> Void
    private var advisories: AdvisoryEngine
    private let forecasts: ForecastBoard
    private let siteMailbox: SiteMailbox
    private let erasures: ErasureMailbox
    /// Erases a forgotten vehicle's records outside the store (OTA); returns how many went,
    /// nil when that failed.
    private let forgetElsewhere: @Sendable (VIN) -> Int?
    private let outbox: OutboxRoute?
    private var nextTick: UInt64 = 0
    /// Devices first seen in the current batch, not yet known to the store.
    private var newInBatch = Set<DeviceID>()
    private var rateLimiter: DeviceRateLimiter
    /// Full-disk events since the last `store_full` line.
    private var fullSinceLog: (events: Int64, dropped: Int64, nextLogNanos: UInt64) = (0, 0, 0)

    public init(
        inbound: InboundBuffer, store: RingStore, configuration: Configuration,
        alerts: AlertEngine, forecasts: ForecastBoard, advisories: AdvisoryEngine, siteMailbox: SiteMailbox,
        erasures: ErasureMailbox = ErasureMailbox(), forgetElsewhere: @escaping @Sendable (VIN) -> Int? = { _ in 0 },
        publishRetained: @escaping @Sendable (String, [UInt8]) -> Void,
        publish: @escaping @Sendable (String, [UInt8]) -> Void,
        outbox: OutboxRoute?, metrics: IngestMetrics, logger: Logger
    ) {
        self.advisories = advisories
        self.forecasts = forecasts
        self.siteMailbox = siteMailbox
        self.erasures = erasures
        self.forgetElsewhere = forgetElsewhere
        self.publish = publish
        self.outbox = outbox
        self.alerts = alerts
        self.publishRetained = publishRetained
        self.inbound = inbound
        self.store = store
        decoder = Decoder(configuration: configuration.limits.decoder)
        self.configuration = configuration
        flushIntervalNanos = UInt64(store.configuration.flushIntervalMs) * 1_000_000
        flushMaxReadings = Int(store.configuration.flushMaxReadings)
        statsIntervalNanos = UInt64(max(0, configuration.statsIntervalS)) * 1_000_000_000
        rateLimiter = DeviceRateLimiter(
            ratePerSecond: configuration.limits.deviceRatePerS, burst: configuration.limits.deviceBurst)
        self.metrics = metrics
        self.logger = logger.with("component", "ingest")
    }

    public func start() {
        let started = DetachedThread.start(name: "ingest") { [self] in
            run()
            finished.signal()
        }
        precondition(started, "cannot create the ingest thread")
    }

    /// Blocks until the inbound buffer is closed and everything in it has been committed.
    /// Returns at once to every later caller.
    public func waitUntilFinished() {
        finished.wait()
        finished.signal()
    }
}

extension IngestPipeline: Service {
    public var serviceName: String { "ingest" }

    /// The pipeline ends when its inbound buffer is closed (the MQTT client, started after it,
    /// closes it when it stops): this waits for the last commit.
    public func stop() { waitUntilFinished() }

    private func run() {
        finishPendingErasures()
        var messages: [InboundMessage] = []
        messages.reserveCapacity(1024)
        var batch = IngestBatch()
        var batchDeadline: UInt64 = .max
        var batchMessages: Int64 = 0
        var received: Int64 = 0
        var rejects: [RejectReason: Int64] = [:]
        var nextStats = monotonicNanos() + statsIntervalNanos
        var lastStats = metrics.snapshot
        var lastStatsTime = monotonicNanos()
        var nextReserveCheck = monotonicNanos()

        while true {
            let now = monotonicNanos()
            heartbeat.store(now, ordering: .relaxed)
            let waitUntil = min(batchDeadline, now + 200_000_000)
            messages.removeAll(keepingCapacity: true)
            let taken = inbound.drain(into: &messages, max: 1024, deadlineNanos: waitUntil)
            let nowMs = wallClockMs()
            applySiteUpdates(nowMs: nowMs, into: &batch)
            applyErasures(into: &batch, received: &received, rejects: &rejects)
            for message in messages {
                if batch.isEmpty { batchDeadline = message.receivedAtNanos + flushIntervalNanos }
                process(message, nowMs: nowMs, into: &batch, rejects: &rejects)
            }
            if monotonicNanos() >= nextTick {
                nextTick = monotonicNanos() + 1_000_000_000
                batch.alerts.append(contentsOf: alerts.tick(nowMs: nowMs))
            }
            // Alerts and advisories do not wait for the flush interval: commit (and send) them now.
            if !batch.alerts.isEmpty || !batch.advisories.isEmpty { batchDeadline = 0 }
            received += Int64(taken)
            batchMessages += Int64(taken)
            if taken > 0 {
                let pending = batchMessages
                metrics.update { $0.uncommittedMessages = pending }
            }
            let closing = taken == 0 && inbound.isClosedAndEmpty
            let flushDue =
                !batch.isEmpty
                && (batch.readingCount >= flushMaxReadings || monotonicNanos() >= batchDeadline
                    || closing)
            // Windows close on the clock, with or without traffic.
            if flushDue || (batch.isEmpty && store.aggregationDue(nowMs: wallClockMs())) {
                commit(&batch, received: &received, rejects: &rejects, closing: closing)
                batchMessages = 0
                batchDeadline = .max
            }
            if statsIntervalNanos > 0 && monotonicNanos() >= nextStats {
                let snapshot = metrics.snapshot
                let elapsed = Double(monotonicNanos() - lastStatsTime) / 1e9
                logStats(snapshot, since: lastStats, seconds: elapsed)
                lastStats = snapshot
                lastStatsTime = monotonicNanos()
                nextStats = lastStatsTime + statsIntervalNanos
            }
            // After a full disk: hold space back again once there is room for it.
            if monotonicNanos() >= nextReserveCheck {
                nextReserveCheck = monotonicNanos() + 10_000_000_000
                store.recheckSpace()
            }
            if closing && batch.isEmpty { break }
        }
        logger.info("ingest_stopped", [("messages", String(metrics.snapshot.messagesReceived))])
    }

    private func process(
        _ message: InboundMessage, nowMs: Int64, into batch: inout IngestBatch, rejects: inout [RejectReason: Int64]
    ) {
        if message.isTruncated {
            reject(
                message,
                Rejection(
                    .payloadTooLarge, "\(message.wireLength) bytes, limit \(configuration.limits.maxPayloadBytes)"),
                nowMs: nowMs, into: &batch, rejects: &rejects)
            return
        }
        let result = message.payload.withUnsafeBufferPointer {
            decoder.decode(topic: message.topic, payload: $0, nowMs: nowMs)
        }
        var rowID: Int64?
        if case .success(let decoded) = result, !admits(decoded.device, rowID: &rowID) {
            reject(
                message,
                Rejection(
                    .deviceLimit, "already tracking \(store.configuration.maxDevices) devices (store.max_devices)"),
                nowMs: nowMs, into: &batch, rejects: &rejects)
            return
        }
        if case .success(let decoded) = result,
            !rateLimiter.admit(decoded.device, rowID: rowID, nowNanos: message.receivedAtNanos)
        {
            reject(
                message,
                Rejection(
                    .rateLimited,
                    "\(decoded.device.name) sends faster than \(configuration.limits.deviceRatePerS) messages/s with a burst of \(configuration.limits.deviceBurst) (limits.device_rate_per_s, limits.device_burst)"
                ),
                nowMs: nowMs, into: &batch, rejects: &rejects)
            return
        }
        switch result {
        case .success(.readings(let device, let ts, let seq, let readings, let entryRejections)):
            batch.append(.readings(device: device, ts: ts, seq: seq, readings: readings), rowID: rowID)
            evaluateAlerts(device: device, ts: ts, readings: readings, nowMs: nowMs, into: &batch)
            for rejection in entryRejections {
                reject(message, rejection, nowMs: nowMs, into: &batch, rejects: &rejects)
            }
        case .success(.troubleCodes(let device, let ts, let seq, let codes)):
            batch.append(.troubleCodes(device: device, ts: ts, seq: seq, codes: codes), rowID: rowID)
            batch.alerts.append(
                contentsOf: alerts.observeCodes(vin: device.name, codes: codes.map(\.description), tsMs: ts))
        case .success(.hello(let device, let firmware, let hardware, let model, let nextSeq)):
            batch.append(
                .hello(device: device, firmware: firmware, hardware: hardware, model: model, nextSeq: nextSeq),
                rowID: rowID)
            logger.debug(
                "device_hello", [("device.id", device.name), ("device.fw", firmware), ("device.hw", hardware)])
        case .failure(let rejection):
            reject(message, rejection, nowMs: nowMs, into: &batch, rejects: &rejects)
        }
    }

    private func evaluateAlerts(
        device: DeviceID, ts: Int64, readings: [Reading], nowMs: Int64, into batch: inout IngestBatch
    ) {
        func value(_ signal: Signal) -> Double? {
            for reading in readings where reading.signal.id == signal.id { return reading.value }
            return nil
        }
        switch device.kind {
        case .water:
            let (events, publication) = alerts.observeWater(
                sensor: device.name, levelCm: value(.waterLevel), batteryV: value(.batteryVoltage), tsMs: ts,
                nowMs: nowMs)
            batch.alerts.append(contentsOf: events)
            forecasts.set(device.name, alerts.forecast(sensor: device.name))
            if let publication {
                pendingLevels[device.name] = publication
                let state: AdvisoryEngine.GaugeState =
                    switch publication.state {
                    case .normal: .normal
                    case .warning: .warning
                    case .alarm: .alarm
                    }
                batch.advisories.append(
                    contentsOf: advisories.gaugeChanged(
                        sensor: device.name, state: state, levelCm: publication.levelCm, tsMs: publication.tsMs))
            }
        case .vehicle:
            if let lat = value(.latitude), let lon = value(.longitude) {
                batch.advisories.append(
                    contentsOf: advisories.vehicleMoved(vin: device.name, to: GeoPoint(lat: lat, lon: lon), tsMs: ts)
                )
            }
            let mil = value(.milOn)
            let coolant = value(.coolantTemp)
            if mil != nil || coolant != nil {
                batch.alerts.append(
                    contentsOf: alerts.observeVehicle(vin: device.name, milOn: mil, coolantC: coolant, tsMs: ts))
            }
        }
    }

    /// Applies gauge sites set through the API: stored, then given to the advisory engine
    /// (which tells vehicles now inside a flooding gauge's circle).
    private func applySiteUpdates(nowMs: Int64, into batch: inout IngestBatch) {
        for (site, ticket) in siteMailbox.take() {
            do {
                try store.saveSensorSites([site], source: "api", nowMs: nowMs)
                batch.advisories.append(contentsOf: advisories.setSite(site, tsMs: nowMs))
                logger.notice(
                    "sensor_site_set",
                    [
                        ("device.id", site.sensor), ("lat", String(site.position.lat)),
                        ("lon", String(site.position.lon)), ("radius_m", String(site.radiusM)),
                    ])
                siteMailbox.answer(ticket, true)
            } catch {
                siteMailbox.answer(ticket, false)
                logger.error("sensor_site_failed", [("device.id", site.sensor), ("error", error.description)])
            }
        }
    }

    /// Forgets the vehicles asked for. Whatever of them is still in the batch is committed
    /// first, so that it is erased with the rest instead of coming back after the erasure.
    private func applyErasures(
        into batch: inout IngestBatch, received: inout Int64, rejects: inout [RejectReason: Int64]
    ) {
        guard erasures.hasPending else { return }
        if !batch.isEmpty { commit(&batch, received: &received, rejects: &rejects, closing: false) }
        for (request, ticket) in erasures.take() {
            let vin = request.vin
            let started = monotonicNanos()
            do {
                let rowID = store.rowID(of: DeviceID(vin: vin))
                var report = try store.forget(
                    vin, nowMs: wallClockMs(), upstream: outbox?.erasure.map { erasure in { erasure(vin, $0) } })
                alerts.forget(vin: vin.value)
                advisories.forget(vin: vin.value)
                rateLimiter.forget(DeviceID(vin: vin), rowID: rowID)
                report.otaRecords = try finishErasure(vin) ?? 0
                // The notice is queued: wake the forwarder.
                outbox?.notify()
                metrics.update { $0.erasures += 1 }
                // The log names no VIN: the erasure would otherwise leave it in the journal.
                logger.notice(
                    "vehicle_forgotten",
                    [
                        ("requested_by", request.requestedBy), ("known", String(report.known)),
                        ("readings", String(report.readings)),
                        ("positions", String(report.positions)), ("events", String(report.events)),
                        ("aggregates", String(report.aggregates)), ("alerts", String(report.alerts)),
                        ("advisories", String(report.advisories)), ("rejects", String(report.rejects)),
                        ("outbox_rewritten", String(report.outboxRewritten)),
                        ("outbox_deleted", String(report.outboxDeleted)), ("ota_records", String(report.otaRecords)),
                        ("wal_truncated", String(report.walTruncated)),
                        ("ms", String((monotonicNanos() - started) / 1_000_000)),
                    ])
                erasures.answer(ticket, .success(report))
            } catch {
                logger.error(
                    "vehicle_forget_failed", [("requested_by", request.requestedBy), ("error", error.description)])
                erasures.answer(ticket, .failure(error))
            }
        }
    }

    /// Erases the vehicle's records outside the store, then the store's pending mark; nil when
    /// that failed, and the mark stays for the next start (`finishPendingErasures`).
    private func finishErasure(_ vin: VIN) throws(StoreError) -> Int? {
        guard let records = forgetElsewhere(vin) else { return nil }
        try store.finishErasure(vin)
        return records
    }

    /// Erasures that a stop interrupted between the store and the records elsewhere.
    private func finishPendingErasures() {
        do {
            for vin in try store.pendingErasures() where try finishErasure(vin) != nil {
                logger.notice("erasure_finished", [("detail", "an erasure interrupted by a stop was completed")])
            }
        } catch {
            logger.error(
                "erasure_still_pending",
                [
                    ("error", error.description),
                    ("detail", "a forgotten vehicle's OTA records remain; retried at the next start"),
                ])
        }
    }

    /// Sends the advisories of the batch just committed to their vehicles.
    private func publishAdvisories(_ sent: [Advisory]) {
        guard !sent.isEmpty else { return }
        for advisory in sent {
            publish("v1/advisory/\(advisory.vin)", Self.payload(of: advisory))
            logger.info(
                "advisory_sent",
                [
                    ("device.id", advisory.vin), ("sensor", advisory.sensor),
                    ("advisory.state", advisory.state.rawValue),
                    ("distance_m", String(Int(advisory.distanceM.rounded()))),
                ])
        }
        metrics.update { m in
            for advisory in sent { m.advisories[advisory.state.rawValue, default: 0] += 1 }
        }
    }

    /// The advisory as vehicles receive it (Firmware-Protocols/obd-vehicle.md, vectors/advisory.json).
    static func payload(of advisory: Advisory) -> [UInt8] {
        var writer = JSONWriter(capacity: 256)
        writer.beginObject()
        writer.field("advisory_id", advisory.advisoryID)
        writer.field("type", "flood")
        writer.field("sensor", advisory.sensor)
        writer.field("state", advisory.state.rawValue)
        writer.field("level_cm", advisory.levelCm)
        writer.field("distance_m", (advisory.distanceM * 10).rounded() / 10)
        writer.field("ts_ms", advisory.tsMs)
        writer.endObject()
        return writer.bytes
    }

    /// Sends the level states decided by the batch just committed, retained, so a siren or a
    /// signboard that connects later learns the state at once.
    private func publishLevels() {
        for (sensor, level) in pendingLevels {
            let payload =
                #"{"state":"\#(level.state.rawValue)","level_cm":\#(level.levelCm),"ts_ms":\#(level.tsMs)}"#
            publishRetained("v1/alerts/water/\(sensor)", Array(payload.utf8))
        }
        pendingLevels.removeAll(keepingCapacity: true)
    }

    /// Known devices always (`rowID` is then the store's); a new one while the store (plus this
    /// batch) is under its limit.
    private func admits(_ device: DeviceID, rowID: inout Int64?) -> Bool {
        rowID = store.rowID(of: device)
        if rowID != nil || newInBatch.contains(device) { return true }
        guard store.deviceCount + newInBatch.count < store.configuration.maxDevices else { return false }
        newInBatch.insert(device)
        return true
    }

    private func reject(
        _ message: InboundMessage, _ rejection: Rejection, nowMs: Int64, into batch: inout IngestBatch,
        rejects: inout [RejectReason: Int64]
    ) {
        rejects[rejection.reason, default: 0] += 1
        batch.append(
            reject: IngestBatch.RejectRecord(
                tsMs: nowMs, topic: message.topic, reason: rejection.reason, detail: rejection.detail,
                payloadHead: Array(message.payload.prefix(256))))
        let decision = rejectLog.shouldLog(reason: rejection.reason.rawValue, nowNanos: monotonicNanos())
        if decision.log {
            var fields: [(String, String)] = [
                ("reason", rejection.reason.rawValue), ("detail", rejection.detail),
                ("mqtt.topic", String(message.topic.prefix(128))),
            ]
            if decision.suppressed > 0 { fields.append(("suppressed_since_last", String(decision.suppressed))) }
            logger.warning("message_rejected", fields)
        }
    }

    private func commit(
        _ batch: inout IngestBatch, received: inout Int64, rejects: inout [RejectReason: Int64], closing: Bool
    ) {
        var attempt = 0
        var delayMs = 100
        while true {
            let started = monotonicNanos()
            do {
                let summary = try store.commit(batch, nowMs: wallClockMs(), outbox: outbox?.encode)
                if let cutoff = summary.positionCutoffMs { advisories.forgetPositions(olderThan: cutoff) }
                let micros = Int64((monotonicNanos() - started) / 1000)
                metrics.flushBatchReadings.observe(Double(summary.readingsStored))
                metrics.flushSeconds.observe(Double(micros) / 1e6)
                let receivedCount = received
                let rejectCounts = rejects
                metrics.update { m in
                    m.messagesReceived += receivedCount
                    m.messagesStored += Int64(summary.messagesStored)
                    m.readingsStored += Int64(summary.readingsStored)
                    m.waterReadingsStored += Int64(summary.waterReadingsStored)
                    m.readingsEvicted += Int64(summary.readingsEvicted)
                    m.eventsStored += Int64(summary.eventsStored)
                    m.duplicates += Int64(summary.duplicatesSkipped)
                    m.seqGapsOpened += summary.newGaps
                    m.seqResets += Int64(summary.resets)
                    m.aggregatesWritten += Int64(summary.aggregates.count)
                    m.outboxDropped += summary.outboxDropped
                    m.positionsErased += Int64(summary.positionsErased)
                    for (reason, count) in rejectCounts { m.rejects[reason.rawValue, default: 0] += count }
                    m.commits += 1
                    m.lastCommitMicros = micros
                    m.maxCommitMicros = max(m.maxCommitMicros, micros)
                    m.uncommittedMessages = 0
                }
                for stored in summary.alerts {
                    let event = stored.event
                    logger.notice(
                        "alert",
                        [
                            ("alert.id", stored.alertID), ("device.id", event.device),
                            ("alert.type", event.type.rawValue),
                            ("alert.state", event.state.rawValue), ("alert.value", String(event.value)),
                            ("alert.subject", event.subject),
                        ])
                }
                publishLevels()
                publishAdvisories(batch.advisories)
                if summary.outboxMessages > 0 { outbox?.notify() }
                if summary.outboxDropped > 0 {
                    logger.warning(
                        "outbox_full_dropped",
                        [
                            ("messages", String(summary.outboxDropped)),
                            ("detail", "upstream.max_backlog_bytes reached; oldest aggregates dropped first"),
                        ])
                }
                if summary.newDevices > 0 {
                    logger.debug("devices_added", [("count", String(summary.newDevices))])
                }
                batch.removeAll()
                newInBatch.removeAll(keepingCapacity: true)
                rateLimiter.settle { store.rowID(of: $0) }
                received = 0
                rejects.removeAll(keepingCapacity: true)
                return
            } catch {
                if error.sqliteError?.code.primary == .full, reclaimSpace(for: batch) { continue }
                attempt += 1
                metrics.update { $0.commitFailures += 1 }
                logger.error(
                    "commit_failed",
                    [
                        ("error", error.description), ("batch.messages", String(batch.items.count)),
                        ("attempt", String(attempt)), ("retry_in_ms", String(delayMs)),
                    ])
                // Keep the batch and retry; meanwhile the inbound buffer fills and pushes back
                // on the broker. On shutdown give up after ~30 s so a stop cannot hang forever.
                if closing && attempt >= 10 {
                    logger.critical(
                        "batch_lost_on_shutdown",
                        [("messages", String(batch.items.count)), ("readings", String(batch.readingCount))])
                    batch.removeAll()
                    newInBatch.removeAll(keepingCapacity: true)
                    return
                }
                usleep(UInt32(delayMs) * 1000)
                delayMs = min(delayMs * 2, 5000)
            }
        }
    }

    /// The disk (or `store.max_file_bytes`) is full: drop the oldest readings so this batch and
    /// the ones after it fit. True when room was made and the commit should be tried again.
    private func reclaimSpace(for batch: IngestBatch) -> Bool {
        let held = store.statistics.readings
        let wanted = max(Int64(batch.readingCount) * 2, held / 100, 1000)
        let dropped: Int64
        do {
            dropped = try store.reclaimSpace(atLeast: wanted)
        } catch {
            logger.error("store_reclaim_failed", [("error", error.description)])
            return false
        }
        guard dropped > 0 else {
            logger.critical(
                "store_full",
                [
                    ("readings_dropped", "0"),
                    (
                        "detail",
                        "no reading left to drop: free space on the data partition or raise store.max_file_bytes"
                    ),
                ])
            return false
        }
        let nowMs = wallClockMs()
        metrics.update { m in
            m.storeFullEvents += 1
            m.readingsReclaimed += dropped
            m.lastStoreFullMs = nowMs
        }
        // While full, this happens about once per batch: one line per 10 s says it all.
        fullSinceLog.events += 1
        fullSinceLog.dropped += dropped
        let now = monotonicNanos()
        if now >= fullSinceLog.nextLogNanos {
            logger.warning(
                "store_full",
                [
                    ("full_events", String(fullSinceLog.events)), ("readings_dropped", String(fullSinceLog.dropped)),
                    ("store.readings", String(held - dropped)),
                    ("detail", "disk or store.max_file_bytes full: the oldest readings make room for new ones"),
                ])
            fullSinceLog = (0, 0, now + 10_000_000_000)
        }
        return true
    }

    private func logStats(_ now: IngestMetrics.Snapshot, since before: IngestMetrics.Snapshot, seconds: Double) {
        let rate = seconds > 0 ? Double(now.readingsStored - before.readingsStored) / seconds : 0
        let inboundStats = inbound.statistics
        logger.info(
            "ingest_stats",
            [
                ("messages", String(now.messagesReceived)), ("readings", String(now.readingsStored)),
                ("readings_per_s", String(Int(rate))), ("rejects", String(now.rejectsTotal)),
                (
                    "rejects_by_reason",
                    now.rejects.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
                        .joined(separator: ",")
                ),
                ("duplicates", String(now.duplicates)), ("seq_gaps_opened", String(now.seqGapsOpened)),
                ("evicted", String(now.readingsEvicted)), ("commits", String(now.commits)),
                ("commit_max_us", String(now.maxCommitMicros)), ("inbound_depth", String(inboundStats.depth)),
                ("inbound_blocked", String(inboundStats.blockedPushes)),
            ])
    }
}
