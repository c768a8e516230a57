import Aggregation
import Alerts
public import Logging
import SQLite
public import Telemetry

/// The gateway's bounded store: readings, trouble-code events and rejects, each in a ring
/// of fixed capacity in one SQLite file (WAL mode).
///
/// The writer is not thread-safe by design: one ingest thread owns it and writes whole
/// batches in single transactions. Device state (sequence tracking for loss accounting)
/// is cached in memory and written in the same transaction as the readings it describes,
/// so after a crash the counts and the readings agree.
public final class RingStore {
    public struct Configuration: Sendable {
        public var path: String
        public var capacityReadings: Int64 = 1_000_000
        public var capacityEvents: Int64 = 100_000
        public var capacityRejects: Int64 = 10_000
        /// Devices tracked at most; the pipeline refuses messages from new ones beyond it.
        public var maxDevices = 100_000
        /// `FULL` syncs the WAL at every commit, so a power cut loses nothing committed;
        /// `NORMAL` only at checkpoints (safe against a process crash, not a power cut).
        public var synchronousFull = true
        /// The WAL is truncated back to this size after checkpoints, bounding the footprint.
        public var walSizeLimitBytes: Int64 = 16 * 1024 * 1024
        public var capacityAlerts: Int64 = 100_000
        /// Alert ids are this prefix, a dash and a number that never repeats: the gateway id.
        public var alertIDPrefix = "gw"
        /// The upstream outbox: nil when there is no upstream link (nothing is queued).
        public var outboxGauge: OutboxGauge?
        public var outboxLimitBytes: Int64 = 256 * 1024 * 1024
        /// Turns what a commit stored (alerts, closed windows, events) into upstream messages,
        /// inside the same transaction, so nothing stored can miss the outbox.
        public var outboxEncoder: (@Sendable (CommitSummary, IngestBatch) -> [OutboxMessage])?
        /// Edge aggregation of every accepted reading; nil turns it off.
        public var aggregation: AggregationSettings? = AggregationSettings()

        public init(path: String) {
            self.path = path
        }
    }

    struct DeviceState {
        var id: Int64
        var firstSeenMs: Int64
        var lastSeenMs: Int64
        var firmware: String?
        var hardware: String?
        var model: String?
        var tracker: SequenceTracker
        var readings: Int64
        /// The newest reading per `Signal.slot`, for the API (in memory only).
        var latest: [LatestValues.Value?] = []
    }

    public let configuration: Configuration
    let database: Database
    let logger: Logger
    private(set) var readingsRing: RingCursor
    private(set) var eventsRing: RingCursor
    private(set) var rejectsRing: RingCursor
    var devices: [DeviceID: DeviceState] = [:]
    /// Device row id → name, for rows that leave the store by id (aggregates).
    private var deviceNamesByID: [Int64: String] = [:]
    /// The open aggregation windows (the hourly rollup lives in the file, not in memory).
    var windows: WindowAggregator
    var windowsNeedRebuild = false
    /// When the open windows were last handed to readers, and whether commits changed them since.
    var windowsPublishedMs = Int64.min / 2
    var windowsUnpublished = false
    private(set) var aggregatesRing: RingCursor
    private(set) var alertsRing: RingCursor
    var nextRetentionMs: Int64 = .min
    /// Outbox changes of the transaction in progress, applied to the gauge after it commits.
    var pendingOutbox: (messages: Int64, bytes: Int64) = (0, 0)
    var pendingDrops: Int64 = 0
    /// The newest reading of each series, for the API.
    public let latest = LatestValues()
    /// Aggregation windows not yet stored, for the API's series.
    public let openWindows: OpenWindows
    /// The wall-clock minute of the newest row in reading_marks.
    var lastMarkMinute: Int64 = .min

    public init(configuration: Configuration, logger: Logger) throws(StoreError) {
        self.configuration = configuration
        self.logger = logger.with("component", "store")
        for (name, capacity) in [
            ("capacity_readings", configuration.capacityReadings), ("capacity_events", configuration.capacityEvents),
            ("capacity_rejects", configuration.capacityRejects),
        ] where capacity < 1 {
            throw .invalidConfiguration("store.\(name) must be at least 1, got \(capacity)")
        }
        do {
            database = try Database(path: configuration.path)
        } catch {
            throw .sqlite(error, doing: "opening \(configuration.path)")
        }
        database.setDefensive(true)
        windows = WindowAggregator(
            windowMs: configuration.aggregation?.windowMs ?? 60_000,
            latenessMs: configuration.aggregation?.latenessMs ?? 0)
        openWindows = OpenWindows(
            keepMs: 3 * (configuration.aggregation?.windowMs ?? 60_000) + (configuration.aggregation?.latenessMs ?? 0))
        aggregatesRing = RingCursor(capacity: configuration.aggregation?.capacityRows ?? 1)
        alertsRing = RingCursor(capacity: configuration.capacityAlerts)
        readingsRing = RingCursor(capacity: configuration.capacityReadings)
        eventsRing = RingCursor(capacity: configuration.capacityEvents)
        rejectsRing = RingCursor(capacity: configuration.capacityRejects)
        try step("configuring \(configuration.path)") {
            let mode = try database.scalarText("PRAGMA journal_mode=WAL")
            guard mode?.lowercased() == "wal" else {
                throw SQLiteError(code: .error, message: "journal_mode is \(mode ?? "unknown"), WAL required")
            }
            try database.execute(
                """
                PRAGMA synchronous=\(configuration.synchronousFull ? "FULL" : "NORMAL");
                PRAGMA journal_size_limit=\(configuration.walSizeLimitBytes);
                PRAGMA foreign_keys=OFF;
                """)
        }
        try migrate()
        try step("seeding signals") {
            try database.transaction {
                let insert = try database.statement("INSERT OR IGNORE INTO signals(id, name, unit) VALUES (?, ?, ?)")
                for signal in Signal.catalogue {
                    insert.bind(1, signal.id)
                    insert.bind(2, signal.name)
                    insert.bind(3, signal.unit)
                    try insert.run()
                }
            }
        }
        readingsRing = try openRing("readings", capacity: configuration.capacityReadings)
        eventsRing = try openRing("events", capacity: configuration.capacityEvents)
        rejectsRing = try openRing("rejects", capacity: configuration.capacityRejects)
        if let aggregation = configuration.aggregation {
            aggregatesRing = try openRing("aggregates", capacity: aggregation.capacityRows)
        }
        alertsRing = try openRing("alerts", capacity: configuration.capacityAlerts)
        try loadDevices()
        try step("rebuilding open aggregation windows") { try rebuildWindows() }
        try step("reading the newest value of each series") { try loadLatest() }
        if let gauge = configuration.outboxGauge {
            try step("measuring the outbox") {
                let select = try database.statement("SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox")
                if try select.step() { gauge.add(messages: select.int64(0), bytes: select.int64(1)) }
                select.reset()
            }
        }
        self.logger.info(
            "store_opened",
            [
                ("store.path", configuration.path), ("store.readings", String(readingsRing.count)),
                ("store.capacity_readings", String(readingsRing.capacity)), ("store.devices", String(devices.count)),
                ("sqlite.version", Database.libraryVersion),
            ])
    }

    /// Runs `body`, turning any SQLite failure into a `StoreError` that says what was being done.
    private func step<T>(_ doing: String, _ body: () throws -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch let error as SQLiteError {
            throw .sqlite(error, doing: doing)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .invalidConfiguration("\(doing): \(error)")
        }
    }

    private func migrate() throws(StoreError) {
        let current = try step("reading schema version") { try database.pragmaInt("user_version") }
        if current > Schema.version {
            throw .newerSchema(path: configuration.path, found: current, supported: Schema.version)
        }
        guard current < Schema.version else { return }
        try step("migrating schema from version \(current) to \(Schema.version)") {
            try database.transaction {
                for index in Int(current)..<Schema.migrations.count {
                    try database.execute(Schema.migrations[index])
                }
                try database.execute("PRAGMA user_version=\(Schema.version)")
            }
        }
        logger.notice("store_migrated", [("from_version", String(current)), ("to_version", String(Schema.version))])
    }

    /// Loads a ring's cursor, creating it on first use and re-slotting it when the configured
    /// capacity changed: the newest rows that fit are kept, nothing is wiped.
    private func openRing(_ name: String, capacity: Int64) throws(StoreError) -> RingCursor {
        try step("opening ring \(name)") {
            let select = try database.statement(
                "SELECT capacity, next_seqno, floor_seqno FROM rings WHERE name = ?")
            select.bind(1, name)
            guard try select.step() else {
                select.reset()
                let insert = try database.statement("INSERT INTO rings(name, capacity, next_seqno) VALUES (?, ?, 0)")
                insert.bind(1, name)
                insert.bind(2, capacity)
                try insert.run()
                return RingCursor(capacity: capacity)
            }
            let stored = RingCursor(capacity: select.int64(0), next: select.int64(1), floor: select.int64(2))
            select.reset()
            guard stored.capacity != capacity else { return stored }
            let resized = stored.resized(to: capacity)
            // A row's number is next - 1 - ((next - 1 - slot) % capacity). Drop the rows that
            // no longer fit, then move each to its new slot in two passes through negative
            // slots, so no two rows ever share a slot mid-update.
            let next = stored.next
            let rowNumber = "(\(next) - 1 - ((\(next) - 1 - slot) % \(stored.capacity)))"
            try database.transaction {
                try database.execute(
                    """
                    DELETE FROM \(name) WHERE \(rowNumber) < \(resized.oldest);
                    UPDATE \(name) SET slot = -1 - (\(rowNumber) % \(capacity));
                    UPDATE \(name) SET slot = -1 - slot;
                    UPDATE rings SET capacity = \(capacity), floor_seqno = \(resized.floor) WHERE name = '\(name)';
                    """)
            }
            logger.notice(
                "ring_resized",
                [
                    ("ring", name), ("from_capacity", String(stored.capacity)), ("to_capacity", String(capacity)),
                    ("rows_kept", String(resized.count)),
                ])
            return resized
        }
    }

    private func loadDevices() throws(StoreError) {
        try step("loading devices") {
            let select = try database.statement(
                """
                SELECT id, name, kind, first_seen_ms, last_seen_ms, fw, hw, model, seq_highest, seq_window,
                       seq_gaps, duplicates, seq_resets, readings, seq_latest_ts FROM devices
                """)
            while try select.step() {
                guard let name = select.text(1), let kind = DeviceKind(rawValue: Int(select.int64(2))) else { continue }
                let device: DeviceID
                switch kind {
                case .vehicle:
                    guard let vin = VIN(name) else { continue }
                    device = DeviceID(vin: vin)
                case .water:
                    guard let sensor = SensorID(name) else { continue }
                    device = DeviceID(sensor: sensor)
                }
                let tracker = SequenceTracker(
                    highest: select.isNull(8) ? nil : UInt32(truncatingIfNeeded: select.int64(8)),
                    window: Self.decodeWindow(select.blob(9)),
                    gaps: select.int64(10), duplicates: select.int64(11), resets: select.int64(12),
                    latestTs: select.isNull(14) ? .min : select.int64(14))
                deviceNamesByID[select.int64(0)] = name
                devices[device] = DeviceState(
                    id: select.int64(0), firstSeenMs: select.int64(3), lastSeenMs: select.int64(4),
                    firmware: select.text(5), hardware: select.text(6), model: select.text(7),
                    tracker: tracker, readings: select.int64(13))
            }
            select.reset()
        }
    }

    static func encodeWindow(_ words: [UInt64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(words.count * 8)
        for word in words {
            for shift in stride(from: 0, to: 64, by: 8) {
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return bytes
    }

    static func decodeWindow(_ bytes: [UInt8]) -> [UInt64] {
        guard bytes.count == SequenceTracker.windowWords * 8 else { return [] }
        var words: [UInt64] = []
        words.reserveCapacity(SequenceTracker.windowWords)
        for index in 0..<SequenceTracker.windowWords {
            var word: UInt64 = 0
            for byte in 0..<8 { word |= UInt64(bytes[index * 8 + byte]) << UInt64(byte * 8) }
            words.append(word)
        }
        return words
    }

    /// Writes a whole batch in one transaction. On failure nothing of the batch is kept,
    /// in the file or in memory, so the caller can retry the same batch.
    @discardableResult
    public func commit(_ batch: IngestBatch, nowMs: Int64) throws(StoreError) -> CommitSummary {
        var summary = CommitSummary()
        var touched: [DeviceID: DeviceState] = [:]
        var readings = readingsRing
        var events = eventsRing
        var rejects = rejectsRing
        var aggregates = aggregatesRing
        var alerts = alertsRing
        var late: [LateKey: WindowStats] = [:]
        let aggregating = configuration.aggregation != nil
        try step("committing a batch of \(batch.items.count) messages") {
            if windowsNeedRebuild { try rebuildWindows() }
            // Any failure below leaves the in-memory windows ahead of the file: rebuild next time.
            windowsNeedRebuild = aggregating
            try database.transaction {
                let minute = nowMs - nowMs % 60_000
                if minute > lastMarkMinute { try mark(minute: minute, readings: readings) }
                let insertReading = try database.statement(
                    """
                    INSERT INTO readings(slot, device_id, signal_id, ts_ms, value, dev_seq)
                    VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(slot) DO UPDATE SET device_id = excluded.device_id,
                        signal_id = excluded.signal_id, ts_ms = excluded.ts_ms, value = excluded.value,
                        dev_seq = excluded.dev_seq
                    """)
                // Once the ring has wrapped (a gateway's steady state), every slot holds a row:
                // overwrite it in place, one B-tree seek, instead of the upsert's failed insert
                // and conflict path (a quarter of SQLite's work per reading, by callgrind).
                let overwriteReading = try database.statement(
                    "UPDATE readings SET device_id = ?2, signal_id = ?3, ts_ms = ?4, value = ?5, dev_seq = ?6 WHERE slot = ?1")
                for item in batch.items {
                    switch item {
                    case .readings(let device, let ts, let seq, let values):
                        var state = try deviceState(device, touched: &touched, nowMs: nowMs, summary: &summary)
                        guard observe(seq, ts: ts, state: &state, summary: &summary) else {
                            touched[device] = state
                            continue
                        }
                        for reading in values {
                            let (_, slot, evicts) = readings.advance()
                            // Both statements take slot, device, signal, ts, value, seq as ?1…?6.
                            func write(_ statement: Statement) throws {
                                statement.bind(1, slot)
                                statement.bind(2, state.id)
                                statement.bind(3, reading.signal.id)
                                statement.bind(4, ts)
                                statement.bind(5, reading.value)
                                statement.bind(6, Int64(seq))
                                try statement.run()
                            }
                            var written = false
                            if evicts {
                                try write(overwriteReading)
                                // A slot emptied by a capacity change has no row: insert it below.
                                written = database.changes == 1
                            }
                            if !written { try write(insertReading) }
                            if evicts { summary.readingsEvicted += 1 }
                            state.noteLatest(reading, ts: ts)
                            if aggregating && reading.signal.isAggregated {
                                aggregate(
                                    device: state.id, signal: reading.signal.id, ts: ts, value: reading.value,
                                    nowMs: nowMs,
                                    late: &late)
                            }
                        }
                        summary.readingsStored += values.count
                        if device.kind == .water { summary.waterReadingsStored += values.count }
                        state.readings += Int64(values.count)
                        touched[device] = state
                    case .troubleCodes(let device, let ts, let seq, let codes):
                        var state = try deviceState(device, touched: &touched, nowMs: nowMs, summary: &summary)
                        guard observe(seq, ts: ts, state: &state, summary: &summary) else {
                            touched[device] = state
                            continue
                        }
                        for code in codes {
                            try insertEvent(&events, deviceID: state.id, ts: ts, type: "dtc", detail: code.description)
                            summary.eventsStored += 1
                        }
                        touched[device] = state
                    case .hello(let device, let firmware, let hardware, let model, let nextSeq):
                        var state = try deviceState(device, touched: &touched, nowMs: nowMs, summary: &summary)
                        if let nextSeq, let highest = state.tracker.highest, nextSeq <= highest {
                            state.tracker.restart()
                            summary.resets += 1
                        }
                        state.firmware = firmware
                        state.hardware = hardware
                        state.model = model
                        touched[device] = state
                    }
                }
                for advisory in batch.advisories {
                    guard let vin = VIN(advisory.vin) else { continue }
                    let device = DeviceID(vin: vin)
                    guard let id = (touched[device] ?? devices[device])?.id else { continue }
                    try insertEvent(
                        &events, deviceID: id, ts: advisory.tsMs, type: "advisory",
                        detail: "\(advisory.sensor) \(advisory.state.rawValue) \(Int(advisory.distanceM.rounded())) m")
                    summary.eventsStored += 1
                }
                if !batch.rejects.isEmpty {
                    let insertReject = try database.statement(
                        """
                        INSERT INTO rejects(slot, ts_ms, topic, reason, detail, payload_head)
                        VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT(slot) DO UPDATE SET ts_ms = excluded.ts_ms,
                            topic = excluded.topic, reason = excluded.reason, detail = excluded.detail,
                            payload_head = excluded.payload_head
                        """)
                    for reject in batch.rejects {
                        let (_, slot, _) = rejects.advance()
                        insertReject.bind(1, slot)
                        insertReject.bind(2, reject.tsMs)
                        insertReject.bind(3, String(reject.topic.prefix(256)))
                        insertReject.bind(4, reject.reason.rawValue)
                        insertReject.bind(5, reject.detail)
                        insertReject.bind(6, blob: Array(reject.payloadHead.prefix(256)))
                        try insertReject.run()
                    }
                    summary.rejectsStored = batch.rejects.count
                }
                let updateDevice = try database.statement(
                    """
                    UPDATE devices SET last_seen_ms = ?, fw = ?, hw = ?, model = ?, seq_highest = ?, seq_window = ?,
                        seq_gaps = ?, duplicates = ?, seq_resets = ?, readings = ?, seq_latest_ts = ? WHERE id = ?
                    """)
                for (_, state) in touched {
                    updateDevice.bind(1, state.lastSeenMs)
                    updateDevice.bind(2, state.firmware)
                    updateDevice.bind(3, state.hardware)
                    updateDevice.bind(4, state.model)
                    if let highest = state.tracker.highest {
                        updateDevice.bind(5, Int64(highest))
                    } else {
                        updateDevice.bindNull(5)
                    }
                    updateDevice.bind(6, blob: Self.encodeWindow(state.tracker.window))
                    updateDevice.bind(7, state.tracker.gaps)
                    updateDevice.bind(8, state.tracker.duplicates)
                    updateDevice.bind(9, state.tracker.resets)
                    updateDevice.bind(10, state.readings)
                    updateDevice.bind(11, state.tracker.latestTs)
                    updateDevice.bind(12, state.id)
                    try updateDevice.run()
                }
                if !batch.alerts.isEmpty {
                    try storeAlerts(batch.alerts, ring: &alerts, stored: &summary.alerts)
                }
                if aggregating {
                    try persistAggregates(late: late, nowMs: nowMs, ring: &aggregates, changed: &summary.aggregates)
                    if nowMs >= nextRetentionMs { try expireAggregates(nowMs: nowMs) }
                }
                pendingOutbox = (0, 0)
                pendingDrops = 0
                if let encoder = configuration.outboxEncoder {
                    try enqueue(encoder(summary, batch), nowMs: nowMs)
                }
                let updateRing = try database.statement("UPDATE rings SET next_seqno = ? WHERE name = ?")
                for (name, ring) in [
                    ("readings", readings), ("events", events), ("rejects", rejects), ("aggregates", aggregates),
                    ("alerts", alerts),
                ] {
                    updateRing.bind(1, ring.next)
                    updateRing.bind(2, name)
                    try updateRing.run()
                }
            }
        }
        readingsRing = readings
        aggregatesRing = aggregates
        alertsRing = alerts
        latest.publish(touched.values.map { ($0.id, $0.latest) })
        if configuration.aggregation != nil { publishWindows(nowMs: nowMs, force: false) }
        lastMarkMinute = max(lastMarkMinute, nowMs - nowMs % 60_000)
        if let gauge = configuration.outboxGauge {
            gauge.add(messages: pendingOutbox.messages, bytes: pendingOutbox.bytes)
            summary.outboxMessages = Int(pendingOutbox.messages)
            summary.outboxDropped = pendingDrops
        }
        windowsNeedRebuild = false
        if aggregating && nowMs >= nextRetentionMs { nextRetentionMs = nowMs + 3_600_000 }
        eventsRing = events
        rejectsRing = rejects
        for (device, state) in touched { devices[device] = state }
        return summary
    }

    private func observe(_ seq: UInt32, ts: Int64, state: inout DeviceState, summary: inout CommitSummary) -> Bool {
        let gapsBefore = state.tracker.gaps
        let observation = state.tracker.observe(seq, ts: ts)
        summary.newGaps += state.tracker.gaps - gapsBefore
        switch observation {
        case .duplicate:
            summary.duplicatesSkipped += 1
            return false
        case .reset:
            summary.resets += 1
        default: break
        }
        summary.messagesStored += 1
        return true
    }

    private func insertEvent(
        _ ring: inout RingCursor, deviceID: Int64, ts: Int64, type: String, detail: String
    ) throws {
        let insert = try database.statement(
            """
            INSERT INTO events(slot, device_id, ts_ms, type, detail) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT(slot) DO UPDATE SET device_id = excluded.device_id,
                ts_ms = excluded.ts_ms, type = excluded.type, detail = excluded.detail
            """)
        let (_, slot, _) = ring.advance()
        insert.bind(1, slot)
        insert.bind(2, deviceID)
        insert.bind(3, ts)
        insert.bind(4, type)
        insert.bind(5, detail)
        try insert.run()
    }

    /// The device's state as of this batch, creating its row on first sight.
    private func deviceState(
        _ device: DeviceID, touched: inout [DeviceID: DeviceState], nowMs: Int64, summary: inout CommitSummary
    ) throws -> DeviceState {
        if var state = touched[device] ?? devices[device] {
            state.lastSeenMs = nowMs
            return state
        }
        let insert = try database.statement(
            "INSERT INTO devices(name, kind, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)")
        insert.bind(1, device.name)
        insert.bind(2, device.kind.rawValue)
        insert.bind(3, nowMs)
        insert.bind(4, nowMs)
        try insert.run()
        summary.newDevices += 1
        deviceNamesByID[database.lastInsertRowID] = device.name
        return DeviceState(
            id: database.lastInsertRowID, firstSeenMs: nowMs, lastSeenMs: nowMs, firmware: nil, hardware: nil,
            model: nil, tracker: SequenceTracker(), readings: 0)
    }

    /// Checkpoints the WAL into the main file; called on shutdown so the file stands alone.
    public func checkpoint() throws(StoreError) {
        try step("checkpointing") { try database.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    public struct Statistics: Sendable, Equatable {
        public var readings: Int64
        public var capacityReadings: Int64
        public var readingsEvicted: Int64
        public var events: Int64
        public var rejects: Int64
        public var devices: Int
    }

    public var statistics: Statistics {
        Statistics(
            readings: readingsRing.count, capacityReadings: readingsRing.capacity,
            readingsEvicted: readingsRing.evicted,
            events: eventsRing.count, rejects: rejectsRing.count, devices: devices.count)
    }

    func deviceName(_ id: Int64) -> String { deviceNamesByID[id] ?? "device_\(id)" }

    /// Whether the store already tracks this device (it then never counts against the limit).
    public func knows(_ device: DeviceID) -> Bool { devices[device] != nil }

    public var deviceCount: Int { devices.count }

    /// Loss accounting for one device, as the store has it in memory.
    public func sequenceTracker(for device: DeviceID) -> SequenceTracker? {
        devices[device]?.tracker
    }
}
