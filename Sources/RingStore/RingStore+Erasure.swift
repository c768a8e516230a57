import SQLite
public import Telemetry

#if canImport(Glibc)
    import Glibc
#endif

/// What `RingStore.forget` removed, for the operator who asked (and the log).
public struct ErasureReport: Sendable, Equatable {
    /// False when the store had no device of that VIN (it may still have had rejects, alerts or
    /// queued messages naming it, which are counted below).
    public var known = false
    /// Reading rows blanked in the ring, positions among them.
    public var readings = 0
    public var positions = 0
    public var events = 0
    public var aggregates = 0
    /// Alert history rows, and alerts that were raised at the time.
    public var alerts = 0
    public var activeAlerts = 0
    /// Flood incidents the vehicle was told about (their `cleared` advisory is not sent).
    public var advisories = 0
    public var rejects = 0
    /// Queued upstream messages rewritten without the vehicle, and those left with nothing.
    public var outboxRewritten = 0
    public var outboxDeleted = 0
    /// OTA campaign runs and the installed-firmware record (filled in by whoever holds them).
    public var otaRecords = 0
    /// Whether the write-ahead log was truncated afterwards (false while a reader held it: the
    /// next checkpoint truncates it).
    public var walTruncated = false
    /// Names of the vehicle in upstream messages, covered by the erasure notice.
    public var upstreamNames = 0

    public init() {}
}

/// How a queued upstream message fares when a vehicle is forgotten.
public enum OutboxScrub: Sendable, Equatable {
    case keep
    /// Rewritten without the vehicle.
    case rewrite([UInt8])
    /// Nothing but the vehicle was in it.
    case drop
}

/// The upstream link's part in an erasure: its wire format is not the store's business.
public struct OutboxErasure {
    /// Decides, message by message, what becomes of what is queued.
    public var scrub: ([UInt8]) -> OutboxScrub
    /// The notice queued for the city side (`erasures`), and how many names it lists.
    public var notice: OutboxMessage
    public var names: Int
    /// Strings that a message naming the vehicle contains (its names): only messages with one
    /// of them are given to `scrub`. Must not be empty.
    public var matches: [String]

    public init(
        scrub: @escaping ([UInt8]) -> OutboxScrub, notice: OutboxMessage, names: Int, matches: [String]
    ) {
        precondition(!matches.isEmpty)
        self.scrub = scrub
        self.notice = notice
        self.names = names
        self.matches = matches
    }
}

/// Erasure of one vehicle on request (data protection): everything the store holds about it,
/// in one transaction, so a crash leaves either all of it or none of it.
///
/// Reading rows are blanked in place, as retention does, so the ring's arithmetic is untouched
/// and the slot is overwritten as usual when the ring comes round. Rows of the smaller rings
/// (events, aggregates, alerts, rejects) are deleted: their writes are upserts by slot, so a
/// missing row is simply written again; their ring's row count then counts the gap until then.
/// `secure_delete` zeroes what is deleted, and the write-ahead log is truncated afterwards.
extension RingStore {
    /// `upstream` gets the earliest time the store knows of the vehicle (so that it can name
    /// every pseudonym the vehicle may have had since) and returns how to scrub the outbox.
    public func forget(
        _ vin: VIN, nowMs: Int64, upstream: ((_ sinceMs: Int64) -> OutboxErasure)? = nil
    ) throws(StoreError) -> ErasureReport {
        let device = DeviceID(vin: vin)
        let name = vin.value
        let rowID = devices.rowID(of: device)
        var report = ErasureReport()
        report.known = rowID != nil
        var outboxChange: (messages: Int64, bytes: Int64) = (0, 0)
        try step("erasing a vehicle") {
            try database.transaction {
                var sinceMs = nowMs
                if let id = rowID {
                    let firstSeen = try database.statement("SELECT first_seen_ms FROM devices WHERE id = ?")
                    firstSeen.bind(arguments: id)
                    if try firstSeen.step() { sinceMs = min(sinceMs, firstSeen.int64(0)) }
                    firstSeen.reset()
                    // One scan for what the blanking below cannot tell afterwards: how many of
                    // the rows are positions, and the earliest time (for the upstream names).
                    let held = try database.statement(
                        """
                        SELECT count(*) FILTER (WHERE signal_id IN (\(Self.positionSignalList))), min(ts_ms)
                        FROM readings WHERE device_id = ?
                        """)
                    held.bind(arguments: id)
                    if try held.step() {
                        report.positions = Int(held.int64(0))
                        if !held.isNull(1) { sinceMs = min(sinceMs, held.int64(1)) }
                    }
                    held.reset()
                    let firstEvent = try database.statement("SELECT min(ts_ms) FROM events WHERE device_id = ?")
                    firstEvent.bind(arguments: id)
                    if try firstEvent.step(), !firstEvent.isNull(0) { sinceMs = min(sinceMs, firstEvent.int64(0)) }
                    firstEvent.reset()
                    report.readings = try change(
                        "UPDATE readings SET device_id = 0, signal_id = 0, ts_ms = 0, value = 0, dev_seq = 0 WHERE device_id = ?",
                        id)
                    report.events = try change("DELETE FROM events WHERE device_id = ?", id)
                    report.aggregates = try change("DELETE FROM aggregates WHERE device_id = ?", id)
                    try change("DELETE FROM devices WHERE id = ?", id)
                }
                report.alerts = try change("DELETE FROM alerts WHERE device = ?", name)
                report.activeAlerts = try change("DELETE FROM alerts_active WHERE device = ?", name)
                report.advisories = try change("DELETE FROM advisories_told WHERE vin = ?", name)
                report.rejects = try change(
                    """
                    DELETE FROM rejects WHERE instr(topic, ?1) > 0 OR instr(detail, ?1) > 0
                        OR instr(payload_head, CAST(?1 AS BLOB)) > 0
                    """, name)
                if let upstream, configuration.outboxGauge != nil {
                    let erasure = upstream(sinceMs)
                    report.upstreamNames = erasure.names
                    // Only the messages holding one of the names are read and parsed: a full
                    // backlog is hundreds of MiB, which must not come into memory.
                    let mentions = erasure.matches.indices.map { "instr(payload, CAST(?\($0 + 1) AS BLOB)) > 0" }
                    let select = try database.statement(
                        "SELECT id, payload FROM outbox WHERE \(mentions.joined(separator: " OR "))")
                    for (index, match) in erasure.matches.enumerated() { select.bindText(match, at: Int32(index + 1)) }
                    var rows: [(Int64, [UInt8])] = []
                    while try select.step() { rows.append((select.int64(0), select.blob(1))) }
                    select.reset()
                    let rewrite = try database.statement("UPDATE outbox SET payload = ? WHERE id = ?")
                    let delete = try database.statement("DELETE FROM outbox WHERE id = ?")
                    for (id, payload) in rows {
                        switch erasure.scrub(payload) {
                        case .keep: continue
                        case .rewrite(let bytes):
                            rewrite.bind(arguments: bytes, id)
                            try rewrite.run()
                            report.outboxRewritten += 1
                            outboxChange.bytes += Int64(bytes.count - payload.count)
                        case .drop:
                            delete.bind(arguments: id)
                            try delete.run()
                            report.outboxDeleted += 1
                            outboxChange.messages -= 1
                            outboxChange.bytes -= Int64(payload.count)
                        }
                    }
                    pendingOutbox = (0, 0)
                    pendingDrops = 0
                    try enqueue([erasure.notice], nowMs: nowMs)
                } else {
                    // No upstream link now, but the file may still hold messages queued while
                    // there was one: those naming the VIN go.
                    report.outboxDeleted = try change(
                        "DELETE FROM outbox WHERE instr(payload, CAST(? AS BLOB)) > 0", name)
                }
                // The vehicle's OTA records live in another file: marked here, in this
                // transaction, and erased by `finishErasure` (again at the next start if a
                // crash came first).
                let pending = try database.statement(
                    "INSERT INTO meta(key, value) VALUES (?, '') ON CONFLICT(key) DO NOTHING")
                pending.bind(arguments: Self.erasurePendingPrefix + name)
                try pending.run()
            }
        }
        if let gauge = configuration.outboxGauge, upstream != nil {
            gauge.add(
                messages: outboxChange.messages + pendingOutbox.messages,
                bytes: outboxChange.bytes + pendingOutbox.bytes)
        }
        if let rowID {
            devices.remove(device)
            latest.remove(rowID)
            openWindows.withAggregator { $0.remove(device: rowID) }
        }
        report.walTruncated = truncateLog()
        return report
    }

    static let erasurePendingPrefix = "erasure_pending:"

    /// VINs erased from this file whose records elsewhere (OTA) may not be erased yet.
    public func pendingErasures() throws(StoreError) -> [VIN] {
        try step("reading pending erasures") {
            let select = try database.statement("SELECT key FROM meta WHERE key >= ? AND key < ?")
            select.bind(arguments: Self.erasurePendingPrefix, Self.erasurePendingPrefix + "\u{10FFFF}")
            var vins: [VIN] = []
            while try select.step() {
                if let key = select.text(0), let vin = VIN(String(key.dropFirst(Self.erasurePendingPrefix.count))) {
                    vins.append(vin)
                }
            }
            select.reset()
            return vins
        }
    }

    /// The records elsewhere are gone: the last mention of the VIN in this file goes too.
    public func finishErasure(_ vin: VIN) throws(StoreError) {
        try step("closing an erasure") {
            let delete = try database.statement("DELETE FROM meta WHERE key = ?")
            delete.bind(arguments: Self.erasurePendingPrefix + vin.value)
            try delete.run()
        }
        _ = truncateLog()
    }

    @discardableResult
    private func change(_ sql: String, _ argument: any SQLiteBindable) throws -> Int {
        let statement = try database.statement(sql)
        argument.bind(to: statement, at: 1)
        try statement.run()
        return Int(database.changes)
    }

    /// Checkpoints and truncates the write-ahead log, so pages that held erased rows do not
    /// stay in it. A reader in the middle of a query holds the log for a moment: a few tries.
    func truncateLog() -> Bool {
        for attempt in 0..<20 {
            let busy = try? database.scalarInt("PRAGMA wal_checkpoint(TRUNCATE)")
            if busy == 0 { return true }
            usleep(UInt32(10_000 * (attempt + 1)))
        }
        return false
    }
}
