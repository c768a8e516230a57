/// The arithmetic of a fixed-size ring of rows addressed by a monotonic sequence number.
///
/// Row number `n` lives in slot `n % capacity`, so writing row `n` overwrites row
/// `n - capacity`: the table never holds more than `capacity` rows and never needs a
/// DELETE scan or a VACUUM. `next` is persisted with each batch so a reopened store
/// continues where it stopped.
public struct RingCursor: Sendable, Equatable {
    public let capacity: Int64
    public private(set) var next: Int64
    /// No row below this number exists: rows dropped when the capacity was lowered, or to
    /// make room on a full disk.
    public let floor: Int64
    /// Rows deleted to make room on a full disk (never overwritten: they were gone first).
    public let droppedForSpace: Int64

    public init(capacity: Int64, next: Int64 = 0, floor: Int64 = 0, droppedForSpace: Int64 = 0) {
        precondition(capacity > 0, "ring capacity must be positive")
        self.capacity = capacity
        self.next = next
        self.floor = min(floor, next)
        self.droppedForSpace = max(0, min(droppedForSpace, self.floor))
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

    /// Rows overwritten (or dropped by a capacity change) since the ring was created; rows
    /// dropped for disk space are not among them.
    public var evicted: Int64 { oldest - droppedForSpace }

    /// The slot ranges (inclusive) holding rows `start ..< next`: none, one, two when they wrap
    /// around the end of the table, or the whole table when they fill it. Rows below `oldest`
    /// are gone, so `start` is raised to it.
    public func slotRanges(from start: Int64) -> [(Int64, Int64)] {
        slotRanges(from: start, to: next)
    }

    /// The same for rows `start ..< end` (clamped to the rows held).
    public func slotRanges(from start: Int64, to end: Int64) -> [(Int64, Int64)] {
        let start = max(start, oldest)
        let end = min(end, next)
        guard start < end else { return [] }
        if end - start >= capacity { return [(Int64(0), capacity - 1)] }
        let low = start % capacity
        let high = (end - 1) % capacity
        return low <= high ? [(low, high)] : [(low, capacity - 1), (Int64(0), high)]
    }

    /// The same rows in a ring of another capacity: the newest that fit are kept.
    public func resized(to newCapacity: Int64) -> RingCursor {
        RingCursor(
            capacity: newCapacity, next: next, floor: max(floor, next - newCapacity), droppedForSpace: droppedForSpace)
    }

    /// The ring after its oldest `count` rows were deleted to make room.
    public func droppingOldest(_ count: Int64) -> RingCursor {
        let count = min(max(0, count), self.count)
        return RingCursor(
            capacity: capacity, next: next, floor: oldest + count, droppedForSpace: droppedForSpace + count)
    }
}
