import CSQLite

/// A failed SQLite call: the extended result code, SQLite's own message and the SQL involved.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// An extended result code; named constants for the ones the gateway reacts to.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// The primary code (the low byte), which groups e.g. all I/O errors.
        public var primary: Code { Code(rawValue: rawValue & 0xFF) }

        public static let error = Code(rawValue: SQLITE_ERROR)
        public static let busy = Code(rawValue: SQLITE_BUSY)
        public static let full = Code(rawValue: SQLITE_FULL)
        public static let ioError = Code(rawValue: SQLITE_IOERR)
        public static let corrupt = Code(rawValue: SQLITE_CORRUPT)
        public static let notADatabase = Code(rawValue: SQLITE_NOTADB)
        public static let constraint = Code(rawValue: SQLITE_CONSTRAINT)
        public static let readOnly = Code(rawValue: SQLITE_READONLY)
        public static let cantOpen = Code(rawValue: SQLITE_CANTOPEN)
    }

    public let code: Code
    public let message: String
    public let sql: String?

    public init(code: Code, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    /// True when the file itself is damaged or is not a database, the cases in which a
    /// gateway should move the file aside rather than retry.
    public var isCorruption: Bool {
        code.primary == .corrupt || code.primary == .notADatabase
    }

    public var description: String {
        var text = "SQLite error \(code.rawValue) (\(String(cString: sqlite3_errstr(code.rawValue)))): \(message)"
        if let sql { text += " in: \(sql)" }
        return text
    }
}
