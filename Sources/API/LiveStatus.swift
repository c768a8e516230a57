public import Metrics

/// The gateway's in-memory state that the API reports: connections, counters, rates.
///
/// The API does not know the gateway's types; gatewayd fills this in on each request
/// (cheap: counters are copied under one lock).
public struct LiveStatus: Sendable {
    public var version = ""
    public var gatewayID = ""
    public var startedMs: Int64 = 0
    public var brokerConnected = false
    public var upstreamConfigured = false
    public var upstreamConnected = false
    /// The city broker node the upstream link is on, or trying next ("host:port").
    public var upstreamNode: String?
    /// Moves to another city broker node after a lost or refused connection, since start.
    public var upstreamFailovers: Int64 = 0
    public var messagesReceived: Int64 = 0
    public var readingsByKind: [String: Int64] = [:]
    public var rejectsByReason: [String: Int64] = [:]
    public var duplicates: Int64 = 0
    public var seqGaps: Int64 = 0
    public var seqResets: Int64 = 0
    public var readingsEvicted: Int64 = 0
    public var commits: Int64 = 0
    public var commitFailures: Int64 = 0
    public var uncommittedMessages: Int64 = 0
    public var storeFullEvents: Int64 = 0
    public var readingsReclaimed: Int64 = 0
    /// When a commit last found the disk or the file limit full (nil: never since start).
    public var lastStoreFullMs: Int64?
    public var aggregatesWritten: Int64 = 0
    public var outboxBacklogMessages: Int64 = 0
    public var outboxBacklogBytes: Int64 = 0
    public var outboxLimitBytes: Int64 = 0
    public var outboxDropped: Int64 = 0
    /// Vehicle position rows erased by the retention sweep since start, and the retention.
    public var positionsErased: Int64 = 0
    public var positionRetentionS: Int64 = 0
    /// Vehicles erased on request since start.
    public var vehiclesForgotten: Int64 = 0
    /// Flooded-road advisories sent to vehicles, by state.
    public var advisoriesByState: [String: Int64] = [:]
    /// Certificate name (`upstream`, `http`, `broker`) → seconds until it expires.
    public var certificateExpiry: [String: Int64] = [:]
    public var flushBatchReadings: Histogram.Snapshot?
    public var flushSeconds: Histogram.Snapshot?
    /// Readings stored per second, averaged over about the last minute.
    public var readingsPerSecond: Double = 0
    /// Net growth of the outbox in bytes per second over the same span (negative: draining).
    public var outboxBytesPerSecond: Double = 0
    /// The aggregation window plus its lateness: how long a reading waits to be aggregated.
    public var aggregationDelayMs: Int64?

    public init() {}
}
