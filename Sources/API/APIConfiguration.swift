public import Alerts

/// What the REST API needs from gatewayd's `http` configuration section.
public struct APIConfiguration: Sendable {
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
    public var onlineAfterMs: Int64 = 300_000
    /// The aggregation window (nil when aggregation is off): which steps aggregates serve.
    public var aggregationWindowMs: Int64? = 60_000
    /// How long a `/v1/series` body may be served again (0: never cached).
    public var seriesCacheMs = 1_000
    /// Readers of the store kept open for requests; more requests than this wait in line.
    public var storeReaders = 4
    /// Flood thresholds (`alerts.water` and its per-sensor overrides), so a dashboard draws the
    /// lines the gateway alerts on instead of numbers copied into it.
    public var waterAlerts = WaterAlertSettings()
    public var waterAlertOverrides: [String: WaterAlertSettings] = [:]

    public init() {}
}
