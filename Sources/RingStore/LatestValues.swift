import Synchronization
public import Telemetry

/// The newest committed reading of every signal of every device, in memory.
///
/// `/v1/devices/{id}` shows these. The writer keeps them in its per-device state (an array
/// write per reading) and hands over the devices a commit touched, so the cost is one
/// dictionary store per device and batch, not an index on the reading ring. Rebuilt from the
/// ring when the store opens; updated only after a batch committed.
public final class LatestValues: Sendable {
    public struct Value: Sendable, Equatable {
        public var tsMs: Int64
        public var value: Double
    }

    /// Device row id → one entry per `Signal.catalogue` slot.
    private let table = Mutex<[Int64: [Value?]]>([:])

    public init() {}

    /// The device's signals that have a value, in catalogue order.
    public func values(deviceRowID: Int64, kind: DeviceKind) -> [(signal: Signal, value: Value)] {
        guard let slots = table.withLock({ $0[deviceRowID] }), slots.count == Signal.catalogue.count else { return [] }
        return Signal.catalogue.compactMap { signal in
            guard signal.kind == kind, let value = slots[signal.slot] else { return nil }
            return (signal, value)
        }
    }

    /// Sets these devices' values as given, emptied slots included (retention, erasure).
    func replace(_ devices: [(id: Int64, latest: [Value?])]) {
        guard !devices.isEmpty else { return }
        table.withLock { table in
            for (id, latest) in devices { table[id] = latest }
        }
    }

    func remove(_ deviceRowID: Int64) {
        _ = table.withLock { $0.removeValue(forKey: deviceRowID) }
    }

    func publish(_ devices: [(id: Int64, latest: [Value?])]) {
        guard !devices.isEmpty else { return }
        table.withLock { table in
            for (id, latest) in devices where !latest.isEmpty { table[id] = latest }
        }
    }
}
