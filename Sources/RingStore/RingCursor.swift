/// The arithmetic of a fixed-size ring of rows addressed by a monotonic sequence number.
///
/// Row number `n` lives in slot `n % capacity`, so writing row `n` overwrites row
/// `n - capacity`: the table never holds more than `capacity` rows and never needs a
/// DELETE scan or a VACUUM. `next` is persisted with each batch so a reopened store
/// continues where it stopped.
public struct RingCursor: Sendable, Equatable {
    public let capacity: Int64
    public private(set) var next: Int64
    /// No row below this number exists: rows dropped when the capacity was lowered.
    public let floor: Int64

    public init(capacity: Int64, next: Int64 = 0, floor: Int64 = 0) {
        precondition(capacity > 0, "ring capacity must be positive")
        self.capacity = capacity
        self.next = next
        self.floor = min(floor, next)
    }

    /// Takes the next row number. `evicts` is true when its slot held a live row.
    public mutating func advance() -> (seqno: Int64, slot: Int64, evicts: Bool) {
        let seqno = next
        next += 1
        return (seqno, seqno % capacity, seqno - capacity >= floor)
    }

    /// The oldest row number still held.
    public var oldest: Int64 { max(floor, next - capacity) }

    /// Rows currently held.
    public var count: Int64 { next - oldest }

    /// Rows overwritten (or dropped by a capacity change) since the ring was created.
    public var evicted: Int64 { oldest }

    /// The same rows in a ring of another capacity: the newest that fit are kept.
    public func resized(to newCapacity: Int64) -> RingCursor {
        RingCursor(capacity: newCapacity, next: next, floor: max(floor, next - newCapacity))
    }
}
