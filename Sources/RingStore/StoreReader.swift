import SQLite

/// Read-only access to a store file through its documented views, for gwctl and tests.
///
/// Opens its own connection, so it can run beside a live gatewayd: WAL lets it read a
/// consistent snapshot while the writer commits.
public final class StoreReader {
    let database: Database
    public let path: String

    public init(path: String) throws(StoreError) {
        self.path = path
        do {
            database = try Database(path: path, options: [.readOnly])
        } catch {
            throw .sqlite(error, doing: "opening \(path) read-only")
        }
    }

    public struct Summary: Sendable, Equatable {
        public var readingsByKind: [String: Int64] = [:]
        public var devicesByKind: [String: Int64] = [:]
        public var capacityReadings: Int64 = 0
        public var readingsEvicted: Int64 = 0
        public var readingsDroppedForSpace: Int64 = 0
        public var events: Int64 = 0
        /// Reject reasons of the rejects the ring holds (the newest, up to its capacity).
        public var rejectsByReason: [String: Int64] = [:]
        /// Every reject since the store was created (the ring's row counter).
        public var rejectsTotal: Int64 = 0
        public var seqGaps: Int64 = 0
        public var duplicates: Int64 = 0
        public var fileBytes: Int64 = 0
        public var aggregates: Int64 = 0
        public var alertsActive: Int64 = 0
        public var outboxMessages: Int64 = 0

        public var readings: Int64 { readingsByKind.values.reduce(0, +) }
    }

    func rows(_ sql: String, _ body: (Statement) -> Void) throws(StoreError) {
        do {
            let statement = try database.statement(sql)
            while try statement.step() { body(statement) }
            statement.reset()
        } catch {
            throw .sqlite(error, doing: "reading \(path)")
        }
    }

    public func summary() throws(StoreError) -> Summary {
        var summary = Summary()
        // Counting by device kind through the raw table is far cheaper than through the view.
        try rows(
            """
            SELECT CASE d.kind WHEN 1 THEN 'vehicle' WHEN 2 THEN 'water' END, count(*)
            FROM readings r JOIN devices d ON d.id = r.device_id GROUP BY d.kind
            """
        ) { summary.readingsByKind[$0.text(0) ?? "?"] = $0.int64(1) }
        try rows("SELECT kind, count(*), sum(seq_gaps), sum(duplicates) FROM devices_v GROUP BY kind") {
            summary.devicesByKind[$0.text(0) ?? "?"] = $0.int64(1)
            summary.seqGaps += $0.int64(2)
            summary.duplicates += $0.int64(3)
        }
        try rows("SELECT capacity, next_seqno, floor_seqno, dropped_for_space FROM rings WHERE name = 'readings'") {
            summary.capacityReadings = $0.int64(0)
            let ring = RingCursor(
                capacity: max(1, $0.int64(0)), next: $0.int64(1), floor: $0.int64(2), droppedForSpace: $0.int64(3))
            summary.readingsEvicted = ring.evicted
            summary.readingsDroppedForSpace = ring.droppedForSpace
        }
        try rows("SELECT count(*) FROM events") { summary.events = $0.int64(0) }
        try rows("SELECT next_seqno FROM rings WHERE name = 'rejects'") { summary.rejectsTotal = $0.int64(0) }
        try rows("SELECT reason, count(*) FROM rejects GROUP BY reason") {
            summary.rejectsByReason[$0.text(0) ?? "?"] = $0.int64(1)
        }
        try rows("SELECT min(capacity, next_seqno - floor_seqno) FROM rings WHERE name = 'aggregates'") {
            summary.aggregates = $0.int64(0)
        }
        try rows("SELECT count(*) FROM alerts_active") { summary.alertsActive = $0.int64(0) }
        try rows("SELECT count(*) FROM outbox") { summary.outboxMessages = $0.int64(0) }
        try rows("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()") {
            summary.fileBytes = $0.int64(0)
        }
        return summary
    }

    public struct RejectRow: Sendable {
        public var tsMs: Int64
        public var topic: String
        public var reason: String
        public var detail: String
    }

    public func rejects(limit: Int) throws(StoreError) -> [RejectRow] {
        var result: [RejectRow] = []
        try rows("SELECT ts_ms, topic, reason, detail FROM rejects_v ORDER BY ts_ms DESC LIMIT \(max(1, limit))") {
            result.append(
                RejectRow(
                    tsMs: $0.int64(0), topic: $0.text(1) ?? "", reason: $0.text(2) ?? "", detail: $0.text(3) ?? ""))
        }
        return result
    }
}
