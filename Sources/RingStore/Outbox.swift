import SQLite
import Synchronization

/// A message waiting for the upstream link.
public struct OutboxMessage: Sendable, Equatable {
    public enum Priority: Int, Sendable, Comparable, CaseIterable {
        case alert = 0
        case event = 1
        case aggregate = 2

        public static func < (lhs: Priority, rhs: Priority) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var priority: Priority
    /// The last topic level (`alerts`, `events`, `aggregates`); the forwarder adds the prefix.
    public var topic: String
    public var payload: [UInt8]

    public init(priority: Priority, topic: String, payload: [UInt8]) {
        self.priority = priority
        self.topic = topic
        self.payload = payload
    }
}

/// Backlog figures shared by the writer (which enqueues and trims) and the forwarder (which
/// deletes what upstream acknowledged), so both see one number without asking SQLite.
public final class OutboxGauge: Sendable {
    let bytes = Atomic<Int64>(0)
    let messages = Atomic<Int64>(0)

    public init() {}

    public var backlogBytes: Int64 { bytes.load(ordering: .relaxed) }
    public var backlogMessages: Int64 { messages.load(ordering: .relaxed) }

    func add(messages count: Int64, bytes size: Int64) {
        messages.add(count, ordering: .relaxed)
        bytes.add(size, ordering: .relaxed)
    }
}

extension RingStore {
    /// Inside the commit's transaction: appends messages, then drops the oldest ones, lowest
    /// priority first (aggregates before events before alerts), while the backlog is over its cap.
    func enqueue(_ messages: [OutboxMessage], nowMs: Int64) throws {
        guard let gauge = configuration.outboxGauge, !messages.isEmpty else { return }
        let insert = try database.statement(
            "INSERT INTO outbox(priority, topic, payload, created_ms) VALUES (?, ?, ?, ?)")
        var added: Int64 = 0
        for message in messages {
            insert.bind(arguments: message.priority.rawValue, message.topic, message.payload, nowMs)
            try insert.run()
            added += Int64(message.payload.count)
        }
        pendingOutbox = (pendingOutbox.messages + Int64(messages.count), pendingOutbox.bytes + added)
        var over = gauge.backlogBytes + pendingOutbox.bytes - configuration.outboxLimitBytes
        guard over > 0 else { return }
        for priority in OutboxMessage.Priority.allCases.reversed() where over > 0 {
            let oldest = try database.statement(
                "SELECT id, length(payload) FROM outbox WHERE priority = ? ORDER BY id LIMIT 256")
            let delete = try database.statement("DELETE FROM outbox WHERE id = ?")
            while over > 0 {
                oldest.reset()
                oldest.bind(arguments: priority.rawValue)
                var victims: [(Int64, Int64)] = []
                while try oldest.step() { victims.append((oldest.int64(0), oldest.int64(1))) }
                oldest.reset()
                if victims.isEmpty { break }
                for (id, size) in victims where over > 0 {
                    delete.bind(arguments: id)
                    try delete.run()
                    over -= size
                    pendingOutbox = (pendingOutbox.messages - 1, pendingOutbox.bytes - size)
                    pendingDrops += 1
                }
            }
        }
    }
}

/// The forwarder's side of the outbox: its own connection, reading in send order and deleting
/// what was acknowledged. WAL lets it work beside the ingest writer.
public final class OutboxReader {
    let database: Database
    let gauge: OutboxGauge

    public struct Row: Sendable {
        public let id: Int64
        public let priority: OutboxMessage.Priority
        public let topic: String
        public let payload: [UInt8]
        public let createdMs: Int64
    }

    public init(path: String, gauge: OutboxGauge) throws(StoreError) {
        do {
            database = try Database(path: path, options: [.readWrite])
        } catch {
            throw .sqlite(error, doing: "opening \(path) for the upstream outbox")
        }
        self.gauge = gauge
    }

    /// The first `limit` messages in send order, skipping ids already in flight.
    public func next(limit: Int, skipping inFlight: Set<Int64>) throws(StoreError) -> [Row] {
        do {
            let select = try database.statement(
                "SELECT id, priority, topic, payload, created_ms FROM outbox ORDER BY priority, id LIMIT ?")
            select.bind(arguments: limit + inFlight.count)
            var rows: [Row] = []
            while try select.step() {
                let id = select.int64(0)
                if inFlight.contains(id) { continue }
                rows.append(
                    Row(
                        id: id, priority: OutboxMessage.Priority(rawValue: Int(select.int64(1))) ?? .aggregate,
                        topic: select.text(2) ?? "", payload: select.blob(3), createdMs: select.int64(4)))
                if rows.count == limit { break }
            }
            select.reset()
            return rows
        } catch {
            throw .sqlite(error, doing: "reading the outbox")
        }
    }

    /// Deletes acknowledged messages in one transaction.
    public func delete(_ rows: [(id: Int64, bytes: Int64)]) throws(StoreError) {
        guard !rows.isEmpty else { return }
        do {
            try database.transaction {
                let delete = try database.statement("DELETE FROM outbox WHERE id = ?")
                for row in rows {
                    delete.bind(arguments: row.id)
                    try delete.run()
                }
            }
        } catch let error as SQLiteError {
            throw .sqlite(error, doing: "deleting \(rows.count) acknowledged outbox messages")
        } catch {
            throw .invalidConfiguration("deleting from the outbox: \(error)")
        }
        gauge.add(messages: -Int64(rows.count), bytes: -rows.reduce(0) { $0 + $1.bytes })
    }

    /// Creation time of the oldest unsent message, if any.
    public func oldestCreatedMs() throws(StoreError) -> Int64? {
        do {
            return try database.scalarInt("SELECT min(created_ms) FROM outbox")
        } catch {
            throw .sqlite(error, doing: "reading the outbox age")
        }
    }
}
