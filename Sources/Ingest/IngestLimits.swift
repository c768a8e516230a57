public import JSON
public import Settings
import Telemetry

/// The file's `limits` section: what one message and one device may cost the gateway, read
/// straight into this type. The pipeline enforces all of it; the broker client is told the
/// queue and payload size at wiring, because it refuses oversized messages before they queue.
public struct IngestLimits: Sendable {
    public var maxPayloadBytes = 16 * 1024
    /// A `ts` later than the gateway's clock by more than this is refused (device clock wrong).
    public var maxFutureSkewMs: Int64 = 86_400_000
    /// Messages acknowledged by the broker client and not yet taken by the pipeline, at most.
    public var inboundQueue = 8192
    /// Messages per second one device may send on average, and in a burst; above that its
    /// messages are refused (`rate_limited`) so a runaway unit cannot starve the others.
    public var deviceRatePerS: Double = 20
    public var deviceBurst: Int64 = 200

    public init() {}

    public static let section = ConfigSection<Self>([
        .integer("max_payload_bytes", \.maxPayloadBytes, range: 256...1_048_576),
        .integer("max_future_skew_ms", \.maxFutureSkewMs, range: 0...31_536_000_000),
        .integer("inbound_queue", \.inboundQueue, range: 16...1_000_000),
        .number("device_rate_per_s", \.deviceRatePerS, range: 0.01...1_000_000),
        .integer("device_burst", \.deviceBurst, range: 1...1_000_000),
    ])

    /// The decoder's share of the limits.
    var decoder: Telemetry.Decoder.Configuration {
        var configuration = Telemetry.Decoder.Configuration()
        configuration.maxPayloadBytes = maxPayloadBytes
        configuration.maxFutureSkewMs = maxFutureSkewMs
        return configuration
    }
}
