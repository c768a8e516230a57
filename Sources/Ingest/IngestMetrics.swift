public import Metrics
import Synchronization

/// Counters of the ingest path. The pipeline publishes into it once per batch (not per
/// message), so the lock is cheap; readers (stats log, later the metrics endpoint) take a copy.
public final class IngestMetrics: Sendable {
    public typealias Snapshot = IngestCounters

    private let state = Mutex(Snapshot())
    /// Readings per commit: shows whether batching works (many small commits mean it does not).
    public let flushBatchReadings = Histogram(bounds: [1, 10, 100, 500, 1000, 2500, 5000, 10_000, 20_000])
    public let flushSeconds = Histogram(bounds: Histogram.latencyBounds)

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) {
        state.withLock { body(&$0) }
    }
}
