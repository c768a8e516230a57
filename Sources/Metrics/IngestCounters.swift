/// The ingest path's counters since start, declared once: the pipeline keeps them, the stats
/// log line, the upstream status, `/v1/health` and `/metrics` read this same value.
///
/// They were declared here and again, field by field, in the API's live status (which cannot
/// import the ingest module), with a line per field copying one into the other.
public struct IngestCounters: Sendable, Equatable {
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
    /// Rejected messages by reason (`RejectReason` raw values).
    public var rejects: [String: Int64] = [:]
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

    public init() {}

    public var rejectsTotal: Int64 { rejects.values.reduce(0, +) }

    /// Readings stored by device kind (`vehicle`, `water`).
    public func readings(kind: String) -> Int64 {
        kind == "water" ? waterReadingsStored : readingsStored - waterReadingsStored
    }
}
