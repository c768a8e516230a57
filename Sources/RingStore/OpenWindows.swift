public import Aggregation
import Synchronization

/// The aggregation windows not yet in the file (still open, or closed moments ago), as the
/// writer last saw them after a commit.
///
/// A series request answers closed windows from the aggregates table and the rest from here,
/// so the newest minute costs a dictionary lookup instead of a scan of the reading ring.
/// Windows stay here for `keepMs` after they close: a reader whose snapshot predates the
/// commit that stored a window still finds it here, and one that sees it in the file skips
/// it here (it only takes windows starting after the last stored one).
public final class OpenWindows: Sendable {
    public struct Window: Sendable, Equatable {
        public var startMs: Int64
        public var stats: WindowStats
    }

    /// Window start → series → stats: the writer's own layout, so a commit is published by
    /// sharing its tables rather than copying series one by one.
    private let table = Mutex<[Int64: [SeriesKey: WindowStats]]>([:])
    let keepMs: Int64

    init(keepMs: Int64) {
        self.keepMs = keepMs
    }

    /// The series' windows, oldest first.
    public func windows(deviceRowID: Int64, signalID: Int) -> [Window] {
        let key = SeriesKey(device: deviceRowID, signal: signalID)
        return table.withLock { table in
            table.compactMap { start, series in series[key].map { Window(startMs: start, stats: $0) } }
        }.sorted { $0.startMs < $1.startMs }
    }

    /// Takes the aggregator's open windows (shared, copy-on-write: the writer pays one copy of
    /// a window's table when it next adds to it) and keeps windows closed less than `keepMs` ago.
    func publish(from aggregator: WindowAggregator, nowMs: Int64) {
        let open = aggregator.allOpen
        table.withLock { table in
            var next = open
            for (start, series) in table where open[start] == nil && start >= nowMs - keepMs {
                next[start] = series
            }
            table = next
        }
    }

    /// Drops a device's series (erasure); the writer's aggregator drops them too.
    func remove(device: Int64) {
        table.withLock { table in
            for start in table.keys { table[start] = table[start]?.filter { $0.key.device != device } }
        }
    }
}
