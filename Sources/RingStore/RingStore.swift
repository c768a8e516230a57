import Aggregation
import Alerts
public import Logging
import SQLite
public import Telemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

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
        /// How long the ingest loop gathers messages before it commits them here, and how many
        /// readings at most. The broker has acknowledged them already, so this is what a kill -9
        /// can lose; the store's section of the file holds it for that reason.
        public var flushIntervalMs: Int64 = 50
        public var flushMaxReadings: Int64 = 10_000
        /// Devices tracked at most; the pipeline refuses messages from new ones beyond it.
        public var maxDevices = 100_000
        public var synchronous = Synchronous.full
        /// The WAL is truncated back to this size after checkpoints, bounding the footprint.
        public var walSizeLimitBytes: Int64 = 16 * 1024 * 1024
        public var capacityAlerts: Int64 = 100_000
        /// Alert ids are this prefix, a dash and a number that never repeats: the gateway id.
        public var alertIDPrefix = "gw"
        /// The upstream outbox: nil when there is no upstream link (nothing is queued).
        public var outboxGauge: OutboxGauge?
        public var outboxLimitBytes: Int64 = 256 * 1024 * 1024
        /// Edge aggregation of every accepted reading (the file's `aggregation` section).
        public var aggregation = AggregationSettings()
        /// A hard cap on the database file (SQLite's `max_page_count`), below the free space of
        /// the partition: reaching it behaves exactly like a full disk (`reclaimSpace`), but
        /// leaves the rest of the partition to the WAL, the broker and the logs. 0: only the disk.
        public var maxFileBytes: Int64 = 0
        /// Space held back in a file beside the store (`{path}.reserve`) and given up when the
        /// disk fills: SQLite needs room in its WAL even to delete, so without it a full disk
        /// would leave the store unable to make room for anything. 0 turns it off.
        public var reserveBytes: Int64 = 8 * 1024 * 1024
        /// Vehicle positions older than this are erased (nil: kept as long as the ring has room).
        public var positionRetentionMs: Int64?

        public init(path: String = "var/gateway.db") {
            self.path = path
        }
    }

    /// SQLite's `synchronous`: `full` syncs the WAL at every commit, so a power cut loses
    /// nothing committed; `normal` only at checkpoints (safe against a process crash, not a
    /// power cut).
    public enum Synchronous: String, Sendable, CaseIterable {
        case full, normal
    }

    public let configuration: Configuration
    let database: Database
    let logger: Logger
    private(set) var readingsRing: RingCursor
    private(set) var eventsRing: RingCursor
    private(set) var rejectsRing: RingCursor
    var devices = DeviceTable()
    var windowsNeedRebuild = false
    /// The commit's aggregated readings, added to the shared windows in one go (one lock per
    /// commit, not per reading); kept to reuse its capacity.
    var pendingAggregation: [PendingReading] = []
    /// The commit's readings for the API's latest values, applied once it committed.
    var pendingLatest: [LatestValues.Update] = []
    /// When the last chunk of closed windows or hours was written.
    var lastClosingWorkMs = Int64.min / 2
    /// Hours due to close were left for the next commit (more than one chunk of them).
    var hourClosesPending = false
    /// The written-through boundary the hours were last closed up to.
    var hoursCheckedThroughMs = Int64.min
    private(set) var aggregatesRing: RingCursor
    private(set) var alertsRing: RingCursor
    var nextRetentionMs: Int64 = .min
    /// Outbox changes of the transaction in progress, applied to the gauge after it commits.
    var pendingOutbox: (messages: Int64, bytes: Int64) = (0, 0)
    var pendingDrops: Int64 = 0
    /// The newest reading of each series, for the API.
    public let latest = LatestValues()
    /// The aggregation windows not yet stored (the hourly rollup lives in the file), shared
    /// with the API's series readers.
    public let openWindows: OpenWindows
    /// The file's page limit: from `maxFileBytes`, else SQLite's default.
    var maxPages: Int64 = 1_073_741_823
    /// The disk filled up: the file is capped at the size it had then, until space returns.
    var cappedByFullDisk = false
    /// The wall-clock minute of the newest row in reading_marks.
    var lastMarkMinute: Int64 = .min
    /// Rows numbered below this have had their positions erased (kept in `meta`).
    var positionsErasedThrough: Int64 = 0
    var nextPositionSweepMs: Int64 = .min
    /// The last sweep stopped at its slice: the next commit goes on with it.
    var sweepBehind = false
    /// Where the slices of a sweep's by-time part have got to (0: not in one).
    var straddleFrom: Int64 = 0

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
        openWindows = OpenWindows(
            windowMs: configuration.aggregation.windowMs,
            latenessMs: configuration.aggregation.enabled ? configuration.aggregation.latenessMs : 0)
        aggregatesRing = RingCursor(
            capacity: configuration.aggregation.enabled ? configuration.aggregation.capacityRows : 1)
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
                PRAGMA synchronous=\(configuration.synchronous.rawValue.uppercased());
                PRAGMA journal_size_limit=\(configuration.walSizeLimitBytes);
                PRAGMA foreign_keys=OFF;
                PRAGMA secure_delete=ON;
                """)
        }
        try step("checking \(configuration.path)") {
            // quick_check reads every page once (about 0.1 s per 10 MB here): a file damaged by a
            // failing SD card is found at start, not halfway through a commit.
            let started = monotonicNanos()
            let verdict = try database.scalarText("PRAGMA quick_check(1)") ?? "no answer"
            guard verdict == "ok" else { throw SQLiteError(code: .corrupt, message: "quick_check: \(verdict)") }
            self.logger.debug(
                "store_checked",
                [("store.path", configuration.path), ("ms", String((monotonicNanos() - started) / 1_000_000))])
        }
        try migrate()
        if configuration.maxFileBytes > 0 {
            let maxFileBytes = configuration.maxFileBytes
            try step("limiting the file to \(maxFileBytes) bytes") {
                let pageSize = try database.pragmaInt("page_size")
                let pages = try database.pragmaInt("page_count")
                let limit = max(maxFileBytes / max(pageSize, 512), pages)
                maxPages = try database.scalarInt("PRAGMA max_page_count=\(limit)") ?? limit
                if limit * pageSize > maxFileBytes {
                    self.logger.warning(
                        "store_over_size_limit",
                        [
                            ("store.path", configuration.path), ("store.bytes", String(pages * pageSize)),
                            ("store.max_file_bytes", String(maxFileBytes)),
                            ("detail", "the file is already larger than the limit: it will not grow further"),
                        ])
                }
            }
        }
        recheckSpace()
        try step("seeding signals") {
            try database.transaction {
                let insert = try database.statement("INSERT OR IGNORE INTO signals(id, name, unit) VALUES (?, ?, ?)")
                for signal in Signal.catalogue {
                    insert.bind(arguments: signal.id, signal.name, signal.unit)
                    try insert.run()
                }
            }
        }
        readingsRing = try openRing("readings", capacity: configuration.capacityReadings)
        try step("reading the position retention mark") {
            positionsErasedThrough =
                Int64(try database.scalarText("SELECT value FROM meta WHERE key = 'positions_erased_through'") ?? "")
                ?? 0
        }
        eventsRing = try openRing("events", capacity: configuration.capacityEvents)
        rejectsRing = try openRing("rejects", capacity: configuration.capacityRejects)
        if configuration.aggregation.enabled {
            aggregatesRing = try openRing("aggregates", capacity: configuration.aggregation.capacityRows)
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
    func step<T>(_ doing: String, _ body: () throws -> T) throws(StoreError) -> T {
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
            // Migration 10 rewrites a table definition, which defensive mode forbids; only the
            // migrations' own statements run while it is off.
            database.setDefensive(false)
            defer { database.setDefensive(true) }
            try database.transaction {
                for index in Int(current)..<Schema.migrations.count {
                    try database.execute(Schema.migrations[index])
                }
                // A definition rewritten through writable_schema (migration 10) is re-read by
                // every connection only once the schema cookie changes.
                let cookie = try database.pragmaInt("schema_version")
                try database.execute("PRAGMA schema_version=\(cookie + 1)")
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
                "SELECT capacity, next_seqno, floor_seqno, dropped_for_space FROM rings WHERE name = ?")
            select.bind(arguments: name)
            guard try select.step() else {
                select.reset()
                let insert = try database.statement("INSERT INTO rings(name, capacity, next_seqno) VALUES (?, ?, 0)")
                insert.bind(arguments: name, capacity)
                try insert.run()
                return RingCursor(capacity: capacity)
            }
            let stored = RingCursor(
                capacity: select.int64(0), next: select.int64(1), floor: select.int64(2),
                droppedForSpace: select.int64(3))
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
                SELECT id, name, kind, last_seen_ms, seq_highest, seq_window, seq_gaps, duplicates, seq_resets,
                       readings, seq_latest_ts FROM devices
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
                let rowID = select.int64(0)
                let tracker = SequenceTracker(
                    highest: select.isNull(4) ? nil : UInt32(truncatingIfNeeded: select.int64(4)),
                    window: Self.decodeWindow(select.blob(5)),
                    gaps: select.int64(6), duplicates: select.int64(7), resets: select.int64(8),
                    latestTs: select.isNull(10) ? .min : select.int64(10))
                devices.set(
                    DeviceTable.Entry(
                        device: device, lastSeenMs: select.int64(3), readings: select.int64(9), tracker: tracker),
                    at: rowID)
            }
            select.reset()
        }
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
    ///
    /// `outbox` turns what the commit stored (alerts with their ids, closed windows, events)
    /// into upstream messages, queued in the same transaction so nothing stored can miss the
    /// outbox; nil (or a store without `outboxGauge`) queues nothing.
    @discardableResult
    public func commit(
        _ batch: IngestBatch, nowMs: Int64, outbox: ((CommitSummary, IngestBatch) -> [OutboxMessage])? = nil
    ) throws(StoreError) -> CommitSummary {
        var summary = CommitSummary()
        var touched = Touched()
        var readings = readingsRing
        var events = eventsRing
        var rejects = rejectsRing
        var aggregates = aggregatesRing
        var alerts = alertsRing
        var positionsErased = 0
        let aggregating = configuration.aggregation.enabled
        try step("committing a batch of \(batch.items.count) messages") {
            if windowsNeedRebuild { try rebuildWindows() }
            // Any failure below leaves the in-memory windows ahead of the file: rebuild next time.
            windowsNeedRebuild = aggregating
            try database.transaction {
                pendingAggregation.removeAll(keepingCapacity: true)
                pendingLatest.removeAll(keepingCapacity: true)
                let minute = nowMs - nowMs % 60_000
                if minute > lastMarkMinute { try mark(minute: minute, readings: readings) }
                var rows = ReadingRows(on: database)
                // The per-reading buffers are the store's (to keep their capacity), worked on as
                // locals: appending to a class's property checks exclusivity at run time, about
                // 120 instructions a check under callgrind.
                var latestUpdates: [LatestValues.Update] = []
                var aggregated: [PendingReading] = []
                swap(&latestUpdates, &pendingLatest)
                swap(&aggregated, &pendingAggregation)
                var swappedBack = false
                func swapBack() {
                    guard !swappedBack else { return }
                    swappedBack = true
                    swap(&latestUpdates, &pendingLatest)
                    swap(&aggregated, &pendingAggregation)
                }
                defer { swapBack() }
                for (item, hint) in zip(batch.items, batch.rowHints) {
                    switch item {
                    case .readings(let device, let ts, let seq, let values):
                        var (id, state) = try deviceState(
                            device, hint: hint, touched: &touched, nowMs: nowMs, summary: &summary)
                        guard observe(seq, ts: ts, state: &state, summary: &summary) else {
                            touched.entries[id] = state
                            continue
                        }
                        // Consecutive slots go in one statement; the ring's wrap starts another.
                        var runStart = values.startIndex
                        var runSlot: Int64 = 0
                        for (index, reading) in zip(values.indices, values) {
                            let (_, slot, evicts) = readings.advance()
                            if index == runStart {
                                runSlot = slot
                            } else if slot != runSlot + Int64(index - runStart) {
                                try rows.write(
                                    values[runStart..<index], firstSlot: runSlot, device: id, ts: ts, seq: Int64(seq))
                                (runStart, runSlot) = (index, slot)
                            }
                            if evicts { summary.readingsEvicted += 1 }
                            latestUpdates.append(
                                LatestValues.Update(
                                    deviceRowID: id, slot: reading.signal.slot,
                                    value: LatestValues.Value(tsMs: ts, value: reading.value)))
                            if aggregating && reading.signal.isAggregated {
                                aggregated.append(
                                    PendingReading(
                                        series: SeriesKey(device: id, signal: reading.signal.id), ts: ts,
                                        value: reading.value))
                            }
                        }
                        try rows.write(
                            values[runStart..<values.endIndex], firstSlot: runSlot, device: id, ts: ts,
                            seq: Int64(seq))
                        summary.readingsStored += values.count
                        if device.kind == .water { summary.waterReadingsStored += values.count }
                        state.readings += Int64(values.count)
                        touched.entries[id] = state
                    case .troubleCodes(let device, let ts, let seq, let codes):
                        var (id, state) = try deviceState(
                            device, hint: hint, touched: &touched, nowMs: nowMs, summary: &summary)
                        guard observe(seq, ts: ts, state: &state, summary: &summary) else {
                            touched.entries[id] = state
                            continue
                        }
                        for code in codes {
                            try insertEvent(&events, deviceID: id, ts: ts, type: "dtc", detail: code.description)
                            summary.eventsStored += 1
                        }
                        touched.entries[id] = state
                    case .hello(let device, let firmware, let hardware, let model, let nextSeq):
                        var (id, state) = try deviceState(
                            device, hint: hint, touched: &touched, nowMs: nowMs, summary: &summary)
                        if let nextSeq, let highest = state.tracker.highest, nextSeq <= highest {
                            state.tracker.restart()
                            summary.resets += 1
                        }
                        // Written here, not kept in memory: only a hello changes them.
                        let identify = try database.statement(
                            "UPDATE devices SET fw = ?, hw = ?, model = ? WHERE id = ?")
                        identify.bind(arguments: firmware, hardware, model, id)
                        try identify.run()
                        touched.entries[id] = state
                    }
                }
                swapBack()
                if !batch.advisories.isEmpty {
                    let told = try database.statement(
                        """
                        INSERT INTO advisories_told(sensor, vin, incident_ms, distance_m) VALUES (?, ?, ?, ?)
                        ON CONFLICT(sensor, vin) DO UPDATE SET incident_ms = excluded.incident_ms,
                            distance_m = excluded.distance_m
                        """)
                    let cleared = try database.statement("DELETE FROM advisories_told WHERE sensor = ? AND vin = ?")
                    for advisory in batch.advisories {
                        if advisory.state == .cleared {
                            cleared.bind(arguments: advisory.sensor, advisory.vin)
                            try cleared.run()
                        } else {
                            told.bind(
                                arguments: advisory.sensor, advisory.vin, advisory.incidentStartMs, advisory.distanceM)
                            try told.run()
                        }
                    }
                }
                for advisory in batch.advisories {
                    guard let vin = VIN(advisory.vin) else { continue }
                    let device = DeviceID(vin: vin)
                    guard let id = devices.rowID(of: device) ?? touched.created[device] else { continue }
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
                        insertReject.bind(
                            arguments: slot, reject.tsMs, String(reject.topic.prefix(256)), reject.reason.rawValue,
                            reject.detail, Array(reject.payloadHead.prefix(256)))
                        try insertReject.run()
                    }
                    summary.rejectsStored = batch.rejects.count
                }
                let updateDevice = try database.statement(
                    """
                    UPDATE devices SET last_seen_ms = ?, seq_highest = ?, seq_window = ?, seq_gaps = ?,
                        duplicates = ?, seq_resets = ?, readings = ?, seq_latest_ts = ? WHERE id = ?
                    """)
                for (id, state) in touched.entries {
                    // Once per device per commit (about once per message): bound value by value,
                    // statically dispatched, as the per-reading insert is.
                    updateDevice.bindInt64(state.lastSeenMs, at: 1)
                    state.tracker.highest.map { Int64($0) }.bind(to: updateDevice, at: 2)
                    state.tracker.withWindowBytes { updateDevice.bindBlob($0, at: 3) }
                    updateDevice.bindInt64(state.tracker.gaps, at: 4)
                    updateDevice.bindInt64(state.tracker.duplicates, at: 5)
                    updateDevice.bindInt64(state.tracker.resets, at: 6)
                    updateDevice.bindInt64(state.readings, at: 7)
                    state.tracker.latestTs.bind(to: updateDevice, at: 8)
                    updateDevice.bindInt64(id, at: 9)
                    try updateDevice.run()
                }
                if !batch.alerts.isEmpty {
                    try storeAlerts(batch.alerts, ring: &alerts, stored: &summary.alerts)
                }
                positionsErased = try sweepPositions(nowMs: nowMs, readings: readings)
                if aggregating {
                    let late = aggregatePending(nowMs: nowMs)
                    try persistAggregates(late: late, nowMs: nowMs, ring: &aggregates, changed: &summary.aggregates)
                    if nowMs >= nextRetentionMs { try expireAggregates(nowMs: nowMs) }
                }
                pendingOutbox = (0, 0)
                pendingDrops = 0
                if let outbox, configuration.outboxGauge != nil {
                    try enqueue(outbox(summary, batch), nowMs: nowMs)
                }
                let updateRing = try database.statement("UPDATE rings SET next_seqno = ? WHERE name = ?")
                for (name, ring) in [
                    ("readings", readings), ("events", events), ("rejects", rejects), ("aggregates", aggregates),
                    ("alerts", alerts),
                ] {
                    updateRing.bind(arguments: ring.next, name)
                    try updateRing.run()
                }
            }
        }
        readingsRing = readings
        summary.positionCutoffMs = afterPositionSweep(nowMs: nowMs, erased: positionsErased)
        summary.positionsErased = positionsErased
        aggregatesRing = aggregates
        alertsRing = alerts
        latest.apply(pendingLatest)
        pendingLatest.removeAll(keepingCapacity: true)
        if aggregating { openWindows.withAggregator { $0.dropWritten() } }
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
        for (id, state) in touched.entries { devices.set(state, at: id) }
        return summary
    }

    private func observe(_ seq: UInt32, ts: Int64, state: inout DeviceTable.Entry, summary: inout CommitSummary) -> Bool
    {
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
        insert.bind(arguments: slot, deviceID, ts, type, detail)
        try insert.run()
    }

    /// The devices a commit changed, kept apart until it commits: a failed commit leaves the
    /// table as it was, new devices included (their rows were rolled back with it).
    struct Touched {
        var entries: [Int64: DeviceTable.Entry] = [:]
        var created: [DeviceID: Int64] = [:]
    }

    /// The device's row id and state as of this batch, creating its row on first sight.
    ///
    /// `hint` is the row id the pipeline looked up when it admitted the message: taken when the
    /// entry there is still this device (a name comparison, not a hash of it), else looked up.
    private func deviceState(
        _ device: DeviceID, hint: Int64 = -1, touched: inout Touched, nowMs: Int64, summary: inout CommitSummary
    ) throws -> (Int64, DeviceTable.Entry) {
        if hint >= 0, var state = touched.entries[hint] ?? devices[hint], state.device == device {
            state.lastSeenMs = nowMs
            return (hint, state)
        }
        if let id = devices.rowID(of: device) ?? touched.created[device],
            var state = touched.entries[id] ?? devices[id]
        {
            state.lastSeenMs = nowMs
            return (id, state)
        }
        let insert = try database.statement(
            "INSERT INTO devices(name, kind, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?)")
        insert.bind(arguments: device.name, device.kind.rawValue, nowMs, nowMs)
        try insert.run()
        summary.newDevices += 1
        let id = database.lastInsertRowID
        touched.created[device] = id
        return (id, DeviceTable.Entry(device: device, lastSeenMs: nowMs, readings: 0, tracker: SequenceTracker()))
    }

    /// Checkpoints the WAL into the main file; called on shutdown so the file stands alone.
    /// Makes room in a full disk (or a file at `maxFileBytes`) by dropping the oldest
    /// readings, so the newest data keeps flowing in the space there is.
    ///
    /// The ring's floor moves up instead of its capacity going down: rows keep their slots,
    /// the pages of the dropped rows go to SQLite's free list and the next inserts reuse them,
    /// and once space returns the ring grows back to its capacity by itself. Returns how many
    /// readings were dropped.
    public func reclaimSpace(atLeast wanted: Int64) throws(StoreError) -> Int64 {
        if !cappedByFullDisk && !fileLimitReached {
            // The disk itself is full. From here on the file must not grow at all, or SQLite
            // would need space it cannot get even to delete: give up the reserve, checkpoint
            // the WAL into the file with it (the file reaches its full logical size), then cap
            // the file at that size and keep the WAL short, so it is rewritten from its start in
            // the space it already has. Freed rows then make all the room there is.
            _ = releaseReserve()
            _ = try? database.execute("PRAGMA wal_checkpoint(RESTART)")
            if let pages = try? database.pragmaInt("page_count") {
                _ = try? database.scalarInt("PRAGMA max_page_count=\(pages)")
            }
            _ = try? database.execute("PRAGMA wal_autocheckpoint=100")
            cappedByFullDisk = true
        }
        do {
            return try dropOldestReadings(atLeast: wanted)
        } catch {
            _ = try? database.execute("PRAGMA wal_checkpoint(RESTART)")
            return try dropOldestReadings(atLeast: wanted)
        }
    }

    /// After a full disk: once the partition has room again (twice the reserve, at least
    /// 8 MiB), the file may grow again and the reserve is made anew. Cheap when nothing is to
    /// do; the ingest thread calls it every few seconds. True when something changed.
    @discardableResult
    public func recheckSpace() -> Bool {
        let reserve = reservePath
        let wantsReserve = configuration.reserveBytes > 0 && access(reserve, F_OK) != 0
        guard cappedByFullDisk || wantsReserve else { return false }
        var stats = statvfs()
        let directory = URL(fileURLWithPath: configuration.path).deletingLastPathComponent().path
        guard statvfs(directory.isEmpty ? "." : directory, &stats) == 0,
            Int64(stats.f_bavail) * Int64(stats.f_frsize) >= 2 * max(configuration.reserveBytes, 4 << 20)
        else { return false }
        if wantsReserve {
            let fd = open(reserve, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 {
                let rc = posix_fallocate(fd, 0, off_t(configuration.reserveBytes))
                close(fd)
                if rc == 0 {
                    logger.info(
                        "store_reserve_created", [("path", reserve), ("bytes", String(configuration.reserveBytes))])
                } else {
                    unlink(reserve)
                }
            }
        }
        if cappedByFullDisk {
            // The file may grow again, up to its own limit if it has one.
            _ = try? database.scalarInt("PRAGMA max_page_count=\(maxPages)")
            _ = try? database.execute("PRAGMA wal_autocheckpoint=1000")
            cappedByFullDisk = false
            logger.notice("store_space_returned", [("store.path", configuration.path)])
        }
        return true
    }

    /// True when `maxFileBytes` (not the disk) is what is full: the file is at its limit.
    private var fileLimitReached: Bool {
        guard configuration.maxFileBytes > 0, let pages = try? database.pragmaInt("page_count") else { return false }
        return pages >= maxPages - 1
    }

    /// Space held back for the next full disk (`reserveBytes`).
    private var reservePath: String { configuration.path + ".reserve" }

    private func releaseReserve() -> Bool {
        let reserve = reservePath
        guard access(reserve, F_OK) == 0 else { return false }
        unlink(reserve)
        logger.warning(
            "store_reserve_released",
            [("path", reserve), ("bytes", String(configuration.reserveBytes)), ("detail", "the disk is full")])
        return true
    }

    private func dropOldestReadings(atLeast wanted: Int64) throws(StoreError) -> Int64 {
        let ring = readingsRing
        let count = min(max(wanted, 1), ring.count)
        guard count > 0 else { return 0 }
        let first = ring.oldest
        let dropped = ring.droppingOldest(count)
        let newFloor = dropped.floor
        let start = first % ring.capacity
        let end = start + count
        try step("dropping the oldest \(count) readings to make room") {
            try database.transaction {
                if end <= ring.capacity {
                    try database.execute("DELETE FROM readings WHERE slot >= \(start) AND slot < \(end)")
                } else {
                    try database.execute(
                        "DELETE FROM readings WHERE slot >= \(start) OR slot < \(end - ring.capacity)")
                }
                try database.execute(
                    """
                    UPDATE rings SET floor_seqno = \(newFloor), dropped_for_space = \(dropped.droppedForSpace)
                    WHERE name = 'readings'
                    """)
            }
        }
        readingsRing = dropped
        // Checkpoint now, so the WAL starts over in the space it already has instead of growing.
        _ = try? database.execute("PRAGMA wal_checkpoint(RESTART)")
        return count
    }

    /// Moves a damaged store (with its WAL and shared-memory files) aside under a name that
    /// says when, so a fresh store can start and the old file stays for forensics or recovery
    /// (`sqlite3 FILE .recover`). Returns the new name of the main file.
    public static func moveAside(path: String, nowMs: Int64) throws(StoreError) -> String {
        let target = "\(path).corrupt-\(nowMs)"
        for suffix in ["-wal", "-shm", ""] where access(path + suffix, F_OK) == 0 {
            guard rename(path + suffix, target + suffix) == 0 else {
                let reason = String(cString: strerror(errno))
                throw .invalidConfiguration(
                    "moving the damaged \(path + suffix) aside to \(target + suffix) failed: \(reason); move or delete it by hand"
                )
            }
        }
        return target
    }

    public func checkpoint() throws(StoreError) {
        try step("checkpointing") { try database.execute("PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    public struct Statistics: Sendable, Equatable {
        public var readings: Int64
        public var capacityReadings: Int64
        public var readingsEvicted: Int64
        public var readingsDroppedForSpace: Int64
        public var events: Int64
        public var rejects: Int64
        public var devices: Int
    }

    public var statistics: Statistics {
        Statistics(
            readings: readingsRing.count, capacityReadings: readingsRing.capacity,
            readingsEvicted: readingsRing.evicted, readingsDroppedForSpace: readingsRing.droppedForSpace,
            events: eventsRing.count, rejects: rejectsRing.count, devices: devices.count)
    }

    func deviceName(_ id: Int64) -> String { devices[id]?.device.name ?? "device_\(id)" }
    func isVehicle(_ id: Int64) -> Bool { devices[id]?.device.kind == .vehicle }

    /// Whether the store already tracks this device (it then never counts against the limit).
    public func knows(_ device: DeviceID) -> Bool { devices.rowID(of: device) != nil }

    /// The device's row id, which per-device tables outside the store index by.
    public func rowID(of device: DeviceID) -> Int64? { devices.rowID(of: device) }

    public var deviceCount: Int { devices.count }

    /// Loss accounting for one device, as the store has it in memory.
    public func sequenceTracker(for device: DeviceID) -> SequenceTracker? {
        devices.rowID(of: device).flatMap { devices[$0]?.tracker }
    }
}
