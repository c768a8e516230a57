public import Aggregation

/// A closed window as stored and as sent upstream. The receiver upserts by
/// (gateway, device, signal, window_s, start_ms) and keeps the highest `revision`: a late
/// reading re-sends the whole window with the next revision, so nothing is counted twice.
public struct AggregateRow: Sendable, Equatable {
    public var device: String
    public var signal: String
    public var windowS: Int64
    public var startMs: Int64
    public var stats: WindowStats
    public var revision: Int64
    /// A vehicle's window (the device is a VIN): personal data, sent upstream under a pseudonym.
    public var isVehicle: Bool

    public init(
        device: String, signal: String, windowS: Int64, startMs: Int64, stats: WindowStats, revision: Int64,
        isVehicle: Bool = false
    ) {
        self.isVehicle = isVehicle
        self.device = device
        self.signal = signal
        self.windowS = windowS
        self.startMs = startMs
        self.stats = stats
        self.revision = revision
    }
}
