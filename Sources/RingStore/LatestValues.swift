import Synchronization
public import Telemetry

/// The newest committed reading of every signal of every device, in memory.
///
/// `/v1/devices/{id}` shows these. There is one table, shared by the writer and the API: the
/// writer collects a commit's newest values and applies them under the lock after the commit,
/// once per commit, so readers see only what is in the file. Slots are flat — 16 bytes per
/// catalogue signal per device, an empty slot marked by `Int64.min` — not an array of
/// optionals per device, which cost 24 bytes a slot, an allocation per device and a second
/// copy for readers (copy-on-write).
public final class LatestValues: Sendable {
    public struct Value: Sendable, Equatable {
        public var tsMs: Int64
        public var value: Double

        public init(tsMs: Int64, value: Double) {
            self.tsMs = tsMs
            self.value = value
        }

        static let empty = Value(tsMs: .min, value: 0)
    }

    /// One committed reading, as the writer collects them during a commit.
    struct Update {
        let deviceRowID: Int64
        let slot: Int
        let value: Value
    }

    /// A device's slots, one per catalogue signal, inline: no allocation per device.
    typealias Row = InlineArray<25, Value>

    /// Rows at the device's row id (`DeviceSlots`): placed by the id the store hands out in
    /// order, not by an ordinal kept in a dictionary (4 MB at 100 000 devices), and in pages
    /// made on first use, not one array that doubles and copies itself as it grows.
    private let table = Mutex(DeviceSlots<Row>(empty: Row(repeating: .empty)))

    public init() {
        precondition(Signal.catalogue.count <= Row.count, "LatestValues.Row has a slot per catalogue signal")
    }

    /// The device's signals that have a value, in catalogue order.
    public func values(deviceRowID: Int64, kind: DeviceKind) -> [(signal: Signal, value: Value)] {
        let row = table.withLock { $0[deviceRowID] }
        return Signal.catalogue.compactMap { signal in
            let value = row[signal.slot]
            guard signal.kind == kind, value.tsMs != .min else { return nil }
            return (signal, value)
        }
    }

    /// Applies a commit's readings: a slot takes a reading at least as new as the one it holds.
    func apply(_ updates: [Update]) {
        guard !updates.isEmpty else { return }
        table.withLock { table in
            // A message's readings come together: one row read and written per device and message.
            var device = updates[0].deviceRowID
            var row = table[device]
            for update in updates {
                if update.deviceRowID != device {
                    table[device] = row
                    device = update.deviceRowID
                    row = table[device]
                }
                if update.value.tsMs >= row[update.slot].tsMs { row[update.slot] = update.value }
            }
            table[device] = row
        }
    }

    /// Empties the given slots where they hold a value older than `cutoffMs` (position
    /// retention); returns how many it emptied.
    @discardableResult
    func erase(slots erased: [Int], olderThan cutoffMs: Int64) -> Int {
        table.withLock { table in
            var changed: [(Int64, Row)] = []
            var count = 0
            table.walk { device, row in
                var row = row
                var emptied = 0
                for slot in erased where row[slot].tsMs != .min && row[slot].tsMs < cutoffMs {
                    row[slot] = .empty
                    emptied += 1
                }
                if emptied > 0 {
                    changed.append((device, row))
                    count += emptied
                }
            }
            for (device, row) in changed { table[device] = row }
            return count
        }
    }

    func remove(_ deviceRowID: Int64) {
        table.withLock { $0[deviceRowID] = Row(repeating: .empty) }
    }
}
