public import Metrics
import Synchronization
public import Telemetry

/// Counters of the ingest path. The pipeline publishes into it once per batch (not per
/// message), so the lock is cheap; readers (stats log, later the metrics endpoint) take a copy.
public final class IngestMetrics: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var messagesReceived: Int64 = 0
        public var messagesStored: Int64 = 0
        public var readingsStored: Int64 = 0
        public var waterReadingsStored: Int64 = 0
        public var readingsEvicted: Int64 = 0
        public var eventsStored: Int64 = 0
        public var duplicates: Int64 = 0
        public var seqGapsOpened: Int64 = 0
        public var seqResets: Int64 = 0
        /// Closed windows stored or revised (each one is sent upstream).
        public var aggregatesWritten: Int64 = 0
        /// Upstream messages dropped because the outbox reached its cap.
        public var outboxDropped: Int64 = 0
        /// Vehicle position rows erased by the retention sweep.
        public var positionsErased: Int64 = 0
        /// Vehicles forgotten on request.
        public var erasures: Int64 = 0
        public var rejects: [RejectReason: Int64] = [:]
        /// Flooded-road advisories sent to vehicles, by state (warning, alarm, cleared).
        public var advisories: [String: Int64] = [:]
        public var commits: Int64 = 0
        public var commitFailures: Int64 = 0
        public var lastCommitMicros: Int64 = 0
        public var maxCommitMicros: Int64 = 0
        /// Messages taken off the inbound buffer but not yet committed: what a kill -9 loses.
        public var uncommittedMessages: Int64 = 0
        /// Commits that found the disk or the file's size limit full, and the readings dropped
        /// (oldest first) to make room.
        public var storeFullEvents: Int64 = 0
        public var readingsReclaimed: Int64 = 0
        public var lastStoreFullMs: Int64?

        public var rejectsTotal: Int64 { rejects.values.reduce(0, +) }
    }

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
