public import SQLite

/// Why the store could not do what was asked, with what to do about it.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case sqlite(SQLiteError, doing: String)
    /// The file was written by a newer gateway; refusing keeps its data intact.
    case newerSchema(path: String, found: Int64, supported: Int64)
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .sqlite(let error, let doing):
            var text = "\(doing): \(error)"
            if error.code.primary == .full {
                text += " (disk or size limit full: free space on the data partition)"
            } else if error.isCorruption {
                text += " (the database file is damaged: move it aside and restart)"
            }
            return text
        case .newerSchema(let path, let found, let supported):
            return
                "\(path) has schema version \(found) but this gatewayd supports up to \(supported): install the newer gatewayd again or restore a backup"
        case .invalidConfiguration(let message):
            return message
        }
    }

    public var sqliteError: SQLiteError? {
        if case .sqlite(let error, _) = self { return error }
        return nil
    }
}
