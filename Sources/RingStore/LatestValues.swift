import Aggregation
public import Telemetry
import Synchronization

/// The newest committed reading of every (device, signal), in memory.
///
/// `/v1/devices/{id}` shows these; keeping them here costs one dictionary update per reading
/// instead of an index on the reading ring. Rebuilt from the ring when the store opens, and
/// updated only after a batch committed, so it never shows what a crash could still lose.
public final class LatestValues: Sendable {
    public struct Value: Sendable, Equatable {
        public var tsMs: Int64
        public var value: Double
    }

    private let table = Mutex<[SeriesKey: Value]>([:])

    public init() {}

    /// Signals of the device in catalogue order.
    public func values(deviceRowID: Int64, kind: DeviceKind) -> [(signal: Signal, value: Value)] {
        table.withLock { table in
            Signal.catalogue.compactMap { signal in
                guard (signal.id >= 30) == (kind == .water),
                    let value = table[SeriesKey(device: deviceRowID, signal: signal.id)]
                else { return nil }
                return (signal, value)
            }
        }
    }

    func merge(_ updates: [SeriesKey: Value]) {
        guard !updates.isEmpty else { return }
        table.withLock { table in
            for (key, value) in updates where value.tsMs >= table[key]?.tsMs ?? .min {
                table[key] = value
            }
        }
    }

    public var count: Int { table.withLock { $0.count } }
}
