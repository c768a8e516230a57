public import Metrics

/// The gateway's in-memory state that the API reports: connections, counters, rates.
///
/// The API does not know the gateway's types; gatewayd fills this in on each request
/// (cheap: counters are copied under one lock). Settings are not here: they are the API's
/// own configuration, set once at start.
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
    /// The ingest path's counters, as the pipeline keeps them.
    public var ingest = IngestCounters()
    public var outboxBacklogMessages: Int64 = 0
    public var outboxBacklogBytes: Int64 = 0
    /// Certificate name (`upstream`, `http`, `broker`) → seconds until it expires.
    public var certificateExpiry: [String: Int64] = [:]
    public var flushBatchReadings: Histogram.Snapshot?
    public var flushSeconds: Histogram.Snapshot?
    /// Readings stored per second, averaged over about the last minute.
    public var readingsPerSecond: Double = 0
    /// Net growth of the outbox in bytes per second over the same span (negative: draining).
    public var outboxBytesPerSecond: Double = 0

    public init() {}
}
