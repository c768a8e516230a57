import Telemetry

/// The store's devices in memory: what a commit needs of a device without reading its row.
///
/// One entry per device, at its row id (`DeviceSlots`), with the sequence window inline, and
/// one index from name to row id. It replaced a dictionary of states keyed by name, whose
/// buckets, separate sequence windows, and the two further tables by row id (names, vehicles)
/// cost about 700 bytes a device at 100 000 devices.
struct DeviceTable {
    struct Entry {
        /// Shares its name's storage with the index key.
        let device: DeviceID
        var lastSeenMs: Int64
        var readings: Int64
        var tracker: SequenceTracker
    }

    private var entries = DeviceSlots<Entry?>(empty: nil)
    private var index: [DeviceID: Int64] = [:]

    var count: Int { index.count }

    func rowID(of device: DeviceID) -> Int64? { index[device] }

    subscript(rowID: Int64) -> Entry? { entries[rowID] }

    mutating func set(_ entry: Entry, at rowID: Int64) {
        if entries[rowID] == nil { index[entry.device] = rowID }
        entries[rowID] = entry
    }

    mutating func remove(_ device: DeviceID) {
        guard let rowID = index.removeValue(forKey: device) else { return }
        entries[rowID] = nil
    }
}
