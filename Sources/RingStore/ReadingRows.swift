import SQLite
import Telemetry

/// Writes a message's readings to the ring, one statement for the whole message.
///
/// A reading row used to be one `UPDATE … WHERE slot = ?` with six values bound: SQLite's work
/// for it was about 5 200 instructions under callgrind, half of all the gateway spent on a
/// reading. Two costs dominated: starting, stepping and halting a statement per row, and
/// binding six values (about 100 instructions each). One `INSERT OR REPLACE … VALUES (…), (…)`
/// per message pays the first once for all its readings, and binds the device, time, sequence
/// number and first slot once, so a row costs two bound values (signal and value); the slots
/// follow as `?1 + 1`, `?1 + 2`, …
///
/// `OR REPLACE` both fills an empty slot and overwrites a used one: `readings` has no index
/// and no trigger, so the conflict on the slot overwrites the row in place, as the `UPDATE`
/// did. Rows are written in ring order, so a slot written twice in one commit (a ring smaller
/// than a batch) keeps the later reading.
///
/// A multi-row statement that can fail halfway makes SQLite open a statement journal on every
/// run; the ring's columns carry no NOT NULL (migration 10) so that it cannot, which saved
/// 360 instructions a reading. The columns are never NULL all the same: every one is bound here.
struct ReadingRows {
    /// Rows per statement at most: a longer run (a message of more readings) takes several.
    static let maxRun = 32

    private let database: Database
    /// This commit's statements by run length. Looked up in the database's cache once per
    /// commit, not per message: that cache hashes the statement's text.
    private var statements: [Statement?] = Array(repeating: nil, count: maxRun + 1)

    /// A commit's writes on `database` (one value per commit).
    init(on database: Database) {
        self.database = database
    }

    /// Writes `readings` of one message to consecutive slots from `firstSlot` (the caller
    /// splits a message where the ring wraps).
    mutating func write(
        _ readings: ArraySlice<Reading>, firstSlot: Int64, device: Int64, ts: Int64, seq: Int64
    ) throws(SQLiteError) {
        var start = readings.startIndex
        var slot = firstSlot
        while start < readings.endIndex {
            let count = min(Self.maxRun, readings.endIndex - start)
            let statement = try self.statement(rows: count)
            statement.bindInt64(slot, at: 1)
            statement.bindInt64(device, at: 2)
            statement.bindInt64(ts, at: 3)
            statement.bindInt64(seq, at: 4)
            var index: Int32 = 5
            // Bound value by value, statically dispatched: `bind(arguments:)`'s per-value
            // protocol dispatch cost +320 instructions per reading under callgrind.
            for reading in readings[start..<start + count] {
                statement.bindInt64(Int64(reading.signal.id), at: index)
                statement.bindDouble(reading.value, at: index + 1)
                index += 2
            }
            try statement.run()
            start += count
            slot += Int64(count)
        }
    }

    private mutating func statement(rows: Int) throws(SQLiteError) -> Statement {
        if let prepared = statements[rows] { return prepared }
        let prepared = try database.statement(Self.sqlByRows[rows])
        statements[rows] = prepared
        return prepared
    }

    /// The statement for each run length, built once.
    static let sqlByRows: [String] = (0...maxRun).map { sql(rows: $0) }

    /// `?1` first slot, `?2` device, `?3` time, `?4` sequence number, then signal and value
    /// for each row.
    static func sql(rows: Int) -> String {
        let values = (0..<rows).map { row in
            let slot = row == 0 ? "?1" : "?1 + \(row)"
            return "(\(slot), ?2, ?\(5 + 2 * row), ?3, ?\(6 + 2 * row), ?4)"
        }
        return "INSERT OR REPLACE INTO readings(slot, device_id, signal_id, ts_ms, value, dev_seq) VALUES "
            + values.joined(separator: ", ")
    }
}
