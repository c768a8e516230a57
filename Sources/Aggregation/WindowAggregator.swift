/// A series is one signal of one device, packed into an integer so that the per-reading
/// lookup hashes one word instead of a device name.
public struct SeriesKey: Sendable, Hashable, Comparable {
    public let rawValue: Int64

    public init(device: Int64, signal: Int) {
        rawValue = device << 8 | Int64(signal & 0xFF)
    }

    public init(rawValue: Int64) {
        self.rawValue = rawValue
    }

    public var device: Int64 { rawValue >> 8 }
    public var signal: Int { Int(rawValue & 0xFF) }

    public static func < (lhs: SeriesKey, rhs: SeriesKey) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The open windows of one window size, aligned to the epoch, kept in memory and updated
/// reading by reading, and the closed ones while they are written out.
///
/// A window `[start, start + window)` closes once the gateway clock passes its end plus the
/// lateness allowance. Closing is per aligned boundary, so every series' window closes at the
/// same moment — but writing 160 000 series in one transaction stalled ingest for 2–3 s, so a
/// closed window is written out in chunks over the next commits (`takeClosing`), in series
/// order. That order is what makes a stop halfway safe: every series at or below the last one
/// written (`ClosingProgress`) is in the file, every one above it is not, so a restart rebuilds
/// exactly the rest from the reading ring.
///
/// A reading for a window that is closed is taken here while its series is still to be
/// written (it joins the chunk); once the series is written, or the window is gone, `add`
/// returns false and the caller merges it into the stored window (a new revision).
public struct WindowAggregator: Sendable {
    public let windowMs: Int64
    public let latenessMs: Int64
    private var index = SeriesIndex()
    /// Open windows, oldest first: usually the current one, sometimes a few more (readings a
    /// little ahead of the gateway clock, or still within the lateness allowance).
    private var open: [WindowPages] = []
    /// Closed windows still held here, oldest first: being written, or written by a commit
    /// in progress (kept until `dropWritten`, so a reader never finds a window in neither place).
    private var closing: [ClosingWindow] = []
    /// After a restart in the middle of writing a window: where that writing had got to.
    private var resume: ClosingProgress?
    /// Pages of dropped windows, reused by the next ones instead of allocated again.
    private var spare: [[WindowPages.Slot]] = []
    /// Series in the window that closed last: the pace the caller spreads the next one at.
    public private(set) var seriesPerWindow = 0

    /// How far the oldest window being written out has got: every series at or below
    /// `writtenThrough` of the window starting at `startMs` is stored.
    public struct ClosingProgress: Sendable, Equatable {
        public let startMs: Int64
        public let writtenThrough: SeriesKey

        public init(startMs: Int64, writtenThrough: SeriesKey) {
            self.startMs = startMs
            self.writtenThrough = writtenThrough
        }
    }

    private struct ClosingWindow: Sendable {
        var pages: WindowPages
        /// Every series at or below this one is written (nil: none yet).
        var writtenThrough: SeriesKey?
        var complete = false

        var startMs: Int64 { pages.startMs }
    }

    public init(windowMs: Int64, latenessMs: Int64) {
        precondition(windowMs > 0 && windowMs <= Int64(UInt32.max) && latenessMs >= 0)
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

    /// Adds a reading to its window; false if that window (or this series of it) is already
    /// stored: the caller merges the reading into the stored window.
    @discardableResult
    public mutating func add(_ series: SeriesKey, ts: Int64, value: Double, nowMs: Int64) -> Bool {
        let start = start(of: ts)
        var position = open.count - 1
        while position >= 0 && open[position].startMs != start { position -= 1 }
        if position < 0 {
            if !closing.isEmpty, let held = closing.firstIndex(where: { $0.startMs == start }) {
                if closing[held].complete { return false }
                if let written = closing[held].writtenThrough, series <= written { return false }
                let id = index.id(for: series)
                closing[held].pages.add(id: id, ts: ts, value: value, spare: &spare)
                return true
            }
            if isClosed(start: start, nowMs: nowMs) { return false }
            position = open.firstIndex { $0.startMs > start } ?? open.count
            open.insert(WindowPages(startMs: start), at: position)
        }
        if let resume, resume.startMs == start, series <= resume.writtenThrough {
            if open[position].present == 0 { open.remove(at: position) }
            return false
        }
        let id = index.id(for: series)
        open[position].add(id: id, ts: ts, value: value, spare: &spare)
        return true
    }

    /// Drops every window of a device (erasure: nothing of it may be stored afterwards).
    public mutating func remove(device: Int64) {
        for (id, key) in index.keys.enumerated() where key.device == device {
            for position in open.indices { open[position].clear(Int32(id)) }
            for position in closing.indices { closing[position].pages.clear(Int32(id)) }
        }
    }

    /// The earliest moment a currently open window closes, if any is open.
    public var nextCloseMs: Int64? {
        open.first.map { $0.startMs + windowMs + latenessMs }
    }

    /// Moves every window closed at `nowMs` to the ones being written out.
    public mutating func beginClosing(nowMs: Int64) {
        while let first = open.first, isClosed(start: first.startMs, nowMs: nowMs) {
            var window = ClosingWindow(pages: open.removeFirst())
            if let resume, resume.startMs == window.startMs { window.writtenThrough = resume.writtenThrough }
            seriesPerWindow = window.pages.present
            closing.append(window)
        }
        if let resume, isClosed(start: resume.startMs, nowMs: nowMs),
            !closing.contains(where: { $0.startMs == resume.startMs })
        {
            self.resume = nil
        }
    }

    /// A part of one closed window, in series order.
    public struct ClosedChunk: Sendable {
        public let startMs: Int64
        public let series: [(key: SeriesKey, stats: WindowStats)]
        /// True when this chunk is the window's last.
        public let completesWindow: Bool
    }

    /// Takes up to `limit` series from the closed windows, oldest window first, in series
    /// order (looking at no more than 64 × `limit` series ids per call, so a sparse window
    /// does not make one long commit). The windows stay readable here until `dropWritten`.
    public mutating func takeClosing(max limit: Int) -> [ClosedChunk] {
        var chunks: [ClosedChunk] = []
        var budget = max(limit, 1)
        var scanBudget = budget > Int.max / 64 ? Int.max : budget * 64
        let sorted = index.sortedIDs()
        let keys = index.keys
        var position = 0
        while budget > 0 && scanBudget > 0 && position < closing.count {
            if closing[position].complete {
                position += 1
                continue
            }
            let window = closing[position]
            // The first id in key order above what is written.
            var from = 0
            if let written = window.writtenThrough {
                var low = 0
                var high = sorted.count
                while low < high {
                    let middle = (low + high) / 2
                    if keys[Int(sorted[middle])] <= written { low = middle + 1 } else { high = middle }
                }
                from = low
            }
            var taken: [(key: SeriesKey, stats: WindowStats)] = []
            var at = from
            while at < sorted.count && taken.count < budget && scanBudget > 0 {
                let id = sorted[at]
                if let stats = window.pages.stats(id) { taken.append((keys[Int(id)], stats)) }
                at += 1
                scanBudget -= 1
            }
            let exhausted = at == sorted.count
            if at > from { closing[position].writtenThrough = keys[Int(sorted[at - 1])] }
            closing[position].complete = exhausted
            budget -= max(taken.count, 1)
            chunks.append(ClosedChunk(startMs: window.startMs, series: taken, completesWindow: exhausted))
            if exhausted && resume?.startMs == window.startMs { resume = nil }
        }
        return chunks
    }

    /// Forgets the windows written out completely, once the commit that wrote them is done.
    public mutating func dropWritten() {
        let limit = index.count / WindowPages.pageSize + 1
        for position in closing.indices where closing[position].complete {
            closing[position].pages.release(into: &spare, keeping: limit)
        }
        closing.removeAll { $0.complete }
    }

    /// True while a closed window still has series to write.
    public var hasClosingWork: Bool { closing.contains { !$0.complete } }

    /// Every window starting before this one is stored completely (the rebuild boundary).
    public func closedThrough(nowMs: Int64) -> Int64 {
        closing.first { !$0.complete }?.startMs ?? start(of: nowMs - latenessMs)
    }

    /// How far the window being written has got, to be saved with the commit (nil when no
    /// window is halfway).
    public var progress: ClosingProgress? {
        guard let window = closing.first(where: { !$0.complete }), let written = window.writtenThrough else {
            return nil
        }
        return ClosingProgress(startMs: window.startMs, writtenThrough: written)
    }

    /// At a start after a stop halfway through a window: its series at or below
    /// `progress.writtenThrough` are stored and must not be added again.
    public mutating func resume(from progress: ClosingProgress?) {
        resume = progress
    }

    /// One series' windows, open and closed but still here, oldest first.
    public func windows(of series: SeriesKey) -> [(startMs: Int64, stats: WindowStats)] {
        guard let id = index.find(series) else { return [] }
        var found: [(startMs: Int64, stats: WindowStats)] = []
        for window in closing { if let stats = window.pages.stats(id) { found.append((window.startMs, stats)) } }
        for window in open { if let stats = window.stats(id) { found.append((window.startMs, stats)) } }
        return found
    }

    /// Open series-windows held in memory.
    public var openCount: Int { open.reduce(0) { $0 + $1.present } }

    /// Forgets everything (before a rebuild from the store).
    public mutating func reset() {
        index = SeriesIndex()
        open.removeAll()
        closing.removeAll()
        spare.removeAll()
        resume = nil
    }
}
