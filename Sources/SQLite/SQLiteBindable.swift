/// A Swift value that binds as one SQL parameter. `Statement.bind(arguments:)` takes a list of them,
/// one per `?` in order, as GRDB's `StatementArguments` do: a statement's arguments are read in
/// one place and cannot skip or repeat a position.
public protocol SQLiteBindable {
    /// Binds the value as parameter `index` (1-based) of `statement`.
    func bind(to statement: Statement, at index: Int32)
}

extension Int64: SQLiteBindable {
    @inlinable public func bind(to statement: Statement, at index: Int32) { statement.bindInt64(self, at: index) }
}

extension Int: SQLiteBindable {
    @inlinable public func bind(to statement: Statement, at index: Int32) {
        statement.bindInt64(Int64(self), at: index)
    }
}

extension Int32: SQLiteBindable {
    @inlinable public func bind(to statement: Statement, at index: Int32) {
        statement.bindInt64(Int64(self), at: index)
    }
}

extension UInt32: SQLiteBindable {
    @inlinable public func bind(to statement: Statement, at index: Int32) {
        statement.bindInt64(Int64(self), at: index)
    }
}

/// Stored as 0 or 1.
extension Bool: SQLiteBindable {
    @inlinable public func bind(to statement: Statement, at index: Int32) {
        statement.bindInt64(self ? 1 : 0, at: index)
    }
}

extension Double: SQLiteBindable {
    @inlinable public func bind(to statement: Statement, at index: Int32) { statement.bindDouble(self, at: index) }
}

extension String: SQLiteBindable {
    @inlinable public func bind(to statement: Statement, at index: Int32) { statement.bindText(self, at: index) }
}

/// Bytes bind as a BLOB.
extension Array: SQLiteBindable where Element == UInt8 {
    @inlinable public func bind(to statement: Statement, at index: Int32) { statement.bindBlob(self, at: index) }
}

/// nil binds as NULL.
extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    @inlinable public func bind(to statement: Statement, at index: Int32) {
        switch self {
        case .some(let value): value.bind(to: statement, at: index)
        case .none: statement.bindNull(at: index)
        }
    }
}

extension Statement {
    /// Binds `arguments` to the statement's parameters 1, 2, … in order (`?NNN` parameters by
    /// their number). Generic over a parameter pack: no array is built, but each value is bound
    /// through its protocol witness (about 50 instructions more than `bindInt64(_:at:)`), so a
    /// statement run once per reading binds value by value instead. The label keeps a numbered
    /// call of the old kind (`bind(3, x)`) from compiling with another meaning.
    @inlinable
    public func bind<each Value: SQLiteBindable>(arguments values: repeat each Value) {
        var index: Int32 = 0
        for value in repeat each values {
            index += 1
            value.bind(to: self, at: index)
        }
    }
}
