import CSQLite

/// One SQLite connection.
///
/// Not thread-safe by design (opened with `SQLITE_OPEN_NOMUTEX`): the gateway gives the
/// writer connection to a single thread and each reader its own connection, which is
/// what lets WAL readers run beside the writer without a lock in the way.
public final class Database {
    let handle: OpaquePointer
    public let path: String
    private var statementCache: [String: Statement] = [:]
    /// Statements whose text is a literal, by the literal's address: hashing that is a word,
    /// where hashing a long statement's text cost 2 100 instructions a lookup.
    private var staticStatementCache: [UInt: Statement] = [:]

    public struct OpenOptions: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let readOnly = OpenOptions(rawValue: SQLITE_OPEN_READONLY)
        public static let readWrite = OpenOptions(rawValue: SQLITE_OPEN_READWRITE)
        public static let create = OpenOptions(rawValue: SQLITE_OPEN_CREATE)
    }

    /// Process-wide settings applied once, before SQLite initialises.
    private static let configured: Bool = {
        _ = csqlite_disable_memstatus()
        return true
    }()

    public init(path: String, options: OpenOptions = [.readWrite, .create]) throws(SQLiteError) {
        _ = Self.configured
        var db: OpaquePointer?
        let flags = options.rawValue | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: .init(rawValue: rc), message: "cannot open \(path): \(message)")
        }
        handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5000)
    }

    deinit {
        statementCache.removeAll()
        staticStatementCache.removeAll()
        sqlite3_close_v2(handle)
    }

    func error(_ rc: Int32, sql: String? = nil) -> SQLiteError {
        SQLiteError(code: .init(rawValue: rc), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements that return no rows the caller needs.
    public func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw SQLiteError(code: .init(rawValue: rc), message: text, sql: sql)
        }
    }

    /// A prepared statement, cached by its SQL text: hot paths prepare once and reuse.
    public func statement(_ sql: String) throws(SQLiteError) -> Statement {
        if let cached = statementCache[sql] {
            cached.reset()
            return cached
        }
        let statement = try Statement(database: self, sql: sql, persistent: true)
        statementCache[sql] = statement
        return statement
    }

    /// A prepared statement for literal SQL, cached by the literal's address: for statements
    /// run many times a commit.
    public func statement(static sql: StaticString) throws(SQLiteError) -> Statement {
        let key = UInt(bitPattern: sql.utf8Start)
        if let cached = staticStatementCache[key] {
            cached.reset()
            return cached
        }
        let statement = try Statement(database: self, sql: sql.description, persistent: true)
        staticStatementCache[key] = statement
        return statement
    }

    /// Drops cached statements, which must be done before schema changes that they depend on.
    public func clearStatementCache() {
        statementCache.removeAll()
        staticStatementCache.removeAll()
    }

    /// Runs `body` in a transaction; rolls back and rethrows if it throws.
    public func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        try execute(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if !isAutocommit { try? execute("ROLLBACK") }
            throw error
        }
    }

    public var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// The value of a pragma that returns one integer (`page_count`, `user_version`, ...).
    public func pragmaInt(_ name: String) throws(SQLiteError) -> Int64 {
        let statement = try Statement(database: self, sql: "PRAGMA \(name)", persistent: false)
        guard try statement.step() else { return 0 }
        return statement.int64(0)
    }

    /// The first column of the first row, as text; nil when there is no row.
    public func scalarText(_ sql: String) throws(SQLiteError) -> String? {
        let statement = try Statement(database: self, sql: sql, persistent: false)
        guard try statement.step() else { return nil }
        return statement.text(0)
    }

    public func scalarInt(_ sql: String) throws(SQLiteError) -> Int64? {
        let statement = try Statement(database: self, sql: sql, persistent: false)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.int64(0)
    }

    /// Keeps corrupt or hostile files from being used to write outside SQLite's own rules.
    public func setDefensive(_ on: Bool) {
        _ = csqlite_db_config_defensive(handle, on ? 1 : 0)
    }

    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }
}

/// Safe to hand from the thread that opened it to another, as long as one thread at a
/// time uses it; the gateway confines each connection to one thread.
extension Database: @unchecked Sendable {}
