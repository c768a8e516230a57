/// A series is one signal of one device, packed into an integer so that the per-reading
/// lookup hashes one word instead of a device name.
public struct SeriesKey: Sendable, Hashable, Comparable {
    public let rawValue: Int64

    public init(device: Int64, signal: Int) {
        rawValue = device << 8 | Int64(signal & 0xFF)
    }

    public var device: Int64 { rawValue >> 8 }
    public var signal: Int { Int(rawValue & 0xFF) }

    public static func < (lhs: SeriesKey, rhs: SeriesKey) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The open windows of one window size, aligned to the epoch, kept in memory and updated
/// reading by reading.
///
/// A window `[start, start + window)` closes once the gateway clock passes its end plus the
/// lateness allowance. Closing is per aligned boundary, so every series' window closes at
/// the same time and is handed over in one piece. A reading for a window that is already
/// closed is not taken here: `add` returns false and the caller merges it into the stored
/// window (a new revision).
public struct WindowAggregator: Sendable {
    public let windowMs: Int64
    public let latenessMs: Int64
    private var open: [Int64: [SeriesKey: WindowStats]] = [:]

    public init(windowMs: Int64, latenessMs: Int64) {
        precondition(windowMs > 0 && latenessMs >= 0)
        self.windowMs = windowMs
        self.latenessMs = latenessMs
    }

    /// The start of the window holding `ts` (floor, also for times before 1970).
    public func start(of ts: Int64) -> Int64 {
        let remainder = ts % windowMs
        return remainder >= 0 ? ts - remainder : ts - remainder - windowMs
    }

    /// True once a window starting at `start` is closed at `nowMs`.
    public func isClosed(start: Int64, nowMs: Int64) -> Bool {
        start + windowMs + latenessMs <= nowMs
    }

    /// Adds a reading to its open window; false if that window is already closed (late data).
    @discardableResult
    public mutating func add(_ series: SeriesKey, ts: Int64, value: Double, nowMs: Int64) -> Bool {
        let start = start(of: ts)
        if open[start] == nil && isClosed(start: start, nowMs: nowMs) { return false }
        open[start, default: [:]][series, default: WindowStats()].add(value, ts: ts)
        return true
    }

    /// Drops every open window of a device (erasure: nothing of it may be stored afterwards).
    public mutating func remove(device: Int64) {
        for start in open.keys {
            open[start] = open[start]?.filter { $0.key.device != device }
            if open[start]?.isEmpty == true { open.removeValue(forKey: start) }
        }
    }

    /// The earliest moment a currently open window closes, if any is open.
    public var nextCloseMs: Int64? {
        open.keys.min().map { $0 + windowMs + latenessMs }
    }

    public struct ClosedWindow: Sendable {
        public let startMs: Int64
        public let series: [SeriesKey: WindowStats]
    }

    /// Removes and returns every window closed at `nowMs`, oldest first.
    public mutating func close(nowMs: Int64) -> [ClosedWindow] {
        let due = open.keys.filter { isClosed(start: $0, nowMs: nowMs) }.sorted()
        return due.map { ClosedWindow(startMs: $0, series: open.removeValue(forKey: $0)!) }
    }

    /// Every open window: window start → series → stats.
    public var allOpen: [Int64: [SeriesKey: WindowStats]] { open }

    /// Open series-windows held in memory.
    public var openCount: Int { open.values.reduce(0) { $0 + $1.count } }

    /// Forgets everything (before a rebuild from the store).
    public mutating func reset() {
        open.removeAll()
    }
}
