public import Aggregation
import Synchronization

/// The aggregation windows not yet in the file (still open, or closed moments ago), per
/// series, as the writer last saw them after a commit.
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

    private let table = Mutex<[SeriesKey: [Window]]>([:])
    let keepMs: Int64

    init(keepMs: Int64) {
        self.keepMs = keepMs
    }

    public func windows(deviceRowID: Int64, signalID: Int) -> [Window] {
        table.withLock { $0[SeriesKey(device: deviceRowID, signal: signalID)] ?? [] }
    }

    /// Replaces the open windows of the given series, keeping their recently closed ones.
    func publish(_ open: [SeriesKey: [Window]], nowMs: Int64) {
        guard !open.isEmpty else { return }
        table.withLock { table in
            for (key, windows) in open {
                var merged = windows
                for old in table[key] ?? []
                where old.startMs >= nowMs - keepMs && !windows.contains(where: { $0.startMs == old.startMs }) {
                    merged.append(old)
                }
                merged.sort { $0.startMs < $1.startMs }
                table[key] = merged.isEmpty ? nil : merged
            }
        }
    }

    /// Forgets series silent for longer than `keepMs` (their windows are all in the file).
    func prune(nowMs: Int64) {
        table.withLock { table in
            table = table.filter { ($0.value.last?.startMs ?? .min) >= nowMs - keepMs }
        }
    }

    public var seriesCount: Int { table.withLock { $0.count } }
}
