/// One window's statistics for every series, as fixed slots indexed by series id.
///
/// A slot is 48 bytes (times as offsets from the window start, the count as 32 bits) against
/// 64 for a dictionary entry plus its empty buckets. Slots come in pages of 512 series, made
/// when a series of the page first reports in the window, so a window that a few devices
/// reach (a device clock a day ahead, the 24 h the decoder allows) costs a page, not the fleet.
struct WindowPages: Sendable {
    static let pageSize = 512
    private static let shift = 9

    struct Slot: Sendable {
        var sum: Double = 0
        var min: Double = 0
        var max: Double = 0
        var last: Double = 0
        var count: UInt32 = 0
        var firstOffset: UInt32 = 0
        var lastOffset: UInt32 = 0

        static let empty = Slot()

        mutating func add(_ value: Double, offset: UInt32) {
            if count == 0 {
                (sum, min, max, last) = (value, value, value, value)
                (firstOffset, lastOffset, count) = (offset, offset, 1)
                return
            }
            count += 1
            sum += value
            if value < min { min = value }
            if value > max { max = value }
            if offset < firstOffset { firstOffset = offset }
            // The latest time's value; the first of equals keeps its place (as WindowStats).
            if offset >= lastOffset {
                lastOffset = offset
                last = value
            }
        }
    }

    let startMs: Int64
    private(set) var pages: [[Slot]] = []
    /// Series with at least one reading here.
    private(set) var present = 0

    init(startMs: Int64) {
        self.startMs = startMs
    }

    /// Adds a reading (`ts` inside this window); `spare` supplies a page when one is needed.
    mutating func add(id: Int32, ts: Int64, value: Double, spare: inout [[Slot]]) {
        let page = Int(id) >> Self.shift
        if page >= pages.count { pages.append(contentsOf: repeatElement([], count: page - pages.count + 1)) }
        if pages[page].isEmpty {
            if var reused = spare.popLast() {
                reused.withUnsafeMutableBufferPointer { $0.update(repeating: .empty) }
                pages[page] = reused
            } else {
                pages[page] = Array(repeating: .empty, count: Self.pageSize)
            }
        }
        let offset = Int(id) & (Self.pageSize - 1)
        if pages[page][offset].count == 0 { present += 1 }
        pages[page][offset].add(value, offset: UInt32(truncatingIfNeeded: ts - startMs))
    }

    func contains(_ id: Int32) -> Bool {
        let page = Int(id) >> Self.shift
        return page < pages.count && !pages[page].isEmpty && pages[page][Int(id) & (Self.pageSize - 1)].count > 0
    }

    func stats(_ id: Int32) -> WindowStats? {
        let page = Int(id) >> Self.shift
        guard page < pages.count, !pages[page].isEmpty else { return nil }
        let slot = pages[page][Int(id) & (Self.pageSize - 1)]
        guard slot.count > 0 else { return nil }
        return WindowStats(
            count: Int64(slot.count), sum: slot.sum, min: slot.min, max: slot.max,
            firstTs: startMs + Int64(slot.firstOffset), lastTs: startMs + Int64(slot.lastOffset), last: slot.last)
    }

    /// Empties a series' slot (erasure).
    mutating func clear(_ id: Int32) {
        guard contains(id) else { return }
        pages[Int(id) >> Self.shift][Int(id) & (Self.pageSize - 1)] = .empty
        present -= 1
    }

    /// Hands the pages back for reuse.
    mutating func release(into spare: inout [[Slot]], keeping limit: Int) {
        for page in pages where !page.isEmpty && spare.count < limit { spare.append(page) }
        pages = []
        present = 0
    }
}
