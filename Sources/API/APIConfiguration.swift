public import Alerts

/// The REST API's settings: the `http` section of gatewayd's configuration file, read straight
/// into this type (`APIConfiguration.section`), plus what gatewayd tells it of other sections.
public struct APIConfiguration: Sendable {
    /// Serve the API at all (`http.enabled`).
    public var enabled = true
    public var listen = "127.0.0.1:8080"
    public var tokens: [APIToken] = []
    /// Leave `/v1/health` open for load balancers.
    public var openHealth = true
    /// Leave `/metrics` open for Prometheus.
    public var openMetrics = true
    /// Origins allowed to call the API from a browser; empty sends no CORS headers.
    public var corsOrigins: [String] = []
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    public var maxConnections = 256
    public var headerTimeoutMs = 10_000
    public var idleTimeoutMs = 60_000
    /// Points per `/v1/series` response at most.
    public var maxSeriesPoints = 10_000
    /// A device counts as online when it was heard from within this time.
    public var onlineAfterS: Int64 = 300
    /// How long a `/v1/series` body may be served again (0: never cached).
    public var seriesCacheMs = 1_000
    /// Readers of the store kept open for requests; more requests than this wait in line.
    public var storeReaders = 4

    // From other sections, set by gatewayd once at start: what the API reports of them.

    /// The aggregation window (nil when aggregation is off): which steps aggregates serve.
    public var aggregationWindowMs: Int64? = 60_000
    /// How late a reading may come and still count in its window: with the window, how long a
    /// reading waits to be aggregated (health's `aggregation_delay_ms`).
    public var aggregationLatenessMs: Int64 = 2_000
    /// `upstream.max_backlog_bytes`, 0 when there is no upstream link.
    public var outboxLimitBytes: Int64 = 0
    /// `privacy.position_retention_s`.
    public var positionRetentionS: Int64 = 3600
    /// Flood thresholds (`alerts.water` and its per-sensor overrides), so a dashboard draws the
    /// lines the gateway alerts on instead of numbers copied into it.
    public var waterAlerts = WaterAlertSettings()
    public var waterAlertOverrides: [String: WaterAlertSettings] = [:]

    public init() {}
}
