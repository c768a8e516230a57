public import Aggregation
import Synchronization

/// The aggregation windows not yet in the file — still open, or closed and being written out
/// chunk by chunk — shared by the writer and the API's readers.
///
/// There is one table: the writer adds a commit's readings to it under the lock, once per
/// commit, and readers look up one series under the same lock. Nothing is copied for readers
/// (a copy shared copy-on-write used to make the writer duplicate the whole current window
/// after every hand-over: at 10 000 devices, 160 000 series, that was most of the memory).
///
/// Readers see a commit's readings from the moment the writer adds them, shortly before the
/// transaction commits; a failed commit rebuilds the table from the file. A closed window
/// leaves the table only after the commit that wrote its last chunk, so a reader that looks
/// here before it reads the file finds every window in one of the two places.
public final class OpenWindows: Sendable {
    public struct Window: Sendable, Equatable {
        public var startMs: Int64
        public var stats: WindowStats
    }

    private let aggregator: Mutex<WindowAggregator>

    init(windowMs: Int64, latenessMs: Int64) {
        aggregator = Mutex(WindowAggregator(windowMs: windowMs, latenessMs: latenessMs))
    }

    /// The series' windows, oldest first.
    public func windows(deviceRowID: Int64, signalID: Int) -> [Window] {
        let key = SeriesKey(device: deviceRowID, signal: signalID)
        return aggregator.withLock { $0.windows(of: key) }.map { Window(startMs: $0.startMs, stats: $0.stats) }
    }

    /// The writer's access: everything it changes, under the lock readers take.
    func withAggregator<R>(_ body: (inout WindowAggregator) throws -> R) rethrows -> R {
        try aggregator.withLock { try body(&$0) }
    }
}
