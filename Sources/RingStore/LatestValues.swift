import Synchronization
public import Telemetry

/// The newest committed reading of every signal of every device, in memory.
///
/// `/v1/devices/{id}` shows these. There is one table, shared by the writer and the API: the
/// writer collects a commit's newest values and applies them under the lock after the commit,
/// once per commit, so readers see only what is in the file. Slots are flat — 16 bytes per
/// catalogue signal per device, an empty slot marked by `Int64.min`, in pages of 256 devices
/// — not an array of optionals per device, which cost 24 bytes a slot, an allocation per
/// device and a second copy for readers (copy-on-write).
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

    private struct Table {
        static let devicesPerPage = 256
        /// Device row id → its ordinal: row `ordinal % devicesPerPage` of page
        /// `ordinal / devicesPerPage`, one slot per catalogue signal.
        var ordinals: [Int64: Int] = [:]
        /// Pages of a fixed size rather than one array: growing one array doubles its capacity
        /// and copies it (at 100 000 devices, a 40 MB table briefly needs 120).
        var pages: [[Value]] = []
        var next = 0
        /// Ordinals of removed devices, reused before the table grows.
        var free: [Int] = []

        mutating func base(of device: Int64) -> (page: Int, first: Int) {
            let width = Signal.catalogue.count
            if let ordinal = ordinals[device] {
                return (ordinal / Self.devicesPerPage, ordinal % Self.devicesPerPage * width)
            }
            let ordinal: Int
            if let reused = free.popLast() {
                ordinal = reused
            } else {
                ordinal = next
                next += 1
            }
            if ordinal / Self.devicesPerPage >= pages.count {
                pages.append(Array(repeating: .empty, count: Self.devicesPerPage * width))
            }
            ordinals[device] = ordinal
            return (ordinal / Self.devicesPerPage, ordinal % Self.devicesPerPage * width)
        }

        func find(_ device: Int64) -> (page: Int, first: Int)? {
            ordinals[device].map {
                ($0 / Self.devicesPerPage, $0 % Self.devicesPerPage * Signal.catalogue.count)
            }
        }
    }

    private let table = Mutex(Table())

    public init() {}

    /// The device's signals that have a value, in catalogue order.
    public func values(deviceRowID: Int64, kind: DeviceKind) -> [(signal: Signal, value: Value)] {
        table.withLock { table in
            guard let (page, first) = table.find(deviceRowID) else { return [] }
            return Signal.catalogue.compactMap { signal in
                let value = table.pages[page][first + signal.slot]
                guard signal.kind == kind, value.tsMs != .min else { return nil }
                return (signal, value)
            }
        }
    }

    /// Applies a commit's readings: a slot takes a reading at least as new as the one it holds.
    func apply(_ updates: [Update]) {
        guard !updates.isEmpty else { return }
        table.withLock { table in
            var device = Int64.min
            var page = 0
            var first = 0
            for update in updates {
                // A message's readings come together: one lookup per device and message.
                if update.deviceRowID != device {
                    device = update.deviceRowID
                    (page, first) = table.base(of: device)
                }
                if update.value.tsMs >= table.pages[page][first + update.slot].tsMs {
                    table.pages[page][first + update.slot] = update.value
                }
            }
        }
    }

    /// Empties the given slots where they hold a value older than `cutoffMs` (position
    /// retention); returns how many it emptied.
    @discardableResult
    func erase(slots erased: [Int], olderThan cutoffMs: Int64) -> Int {
        table.withLock { table in
            var count = 0
            for device in Array(table.ordinals.keys) {
                guard let (page, first) = table.find(device) else { continue }
                for slot in erased {
                    let tsMs = table.pages[page][first + slot].tsMs
                    if tsMs != .min && tsMs < cutoffMs {
                        table.pages[page][first + slot] = .empty
                        count += 1
                    }
                }
            }
            return count
        }
    }

    func remove(_ deviceRowID: Int64) {
        table.withLock { table in
            guard let (page, first) = table.find(deviceRowID),
                let ordinal = table.ordinals.removeValue(forKey: deviceRowID)
            else { return }
            for slot in first..<first + Signal.catalogue.count { table.pages[page][slot] = .empty }
            table.free.append(ordinal)
        }
    }
}
