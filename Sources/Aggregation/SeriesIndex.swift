/// Dense ids for series, so a window is an array indexed by id instead of a dictionary of
/// structs: a `[SeriesKey: WindowStats]` costs 64 bytes a bucket at a load of at most 3/4 in
/// power-of-two tables — 16.8 MB for the 160 000 series of 10 000 devices, 268 MB for 1.6
/// million (just past 3/4 of 2²¹) — and hashes every key with SipHash.
///
/// Open addressing with linear probing over a table of any size (a multiply-high maps the
/// hash onto it, so growing by half does not double the memory), at most 80 % full. Keys are
/// the gateway's own numbers (device row id and signal id), not chosen by devices, so a
/// multiplicative hash is enough. Ids are never reused while the process runs: an erased
/// device's series keep theirs, with nothing in any window.
///
/// The table holds ids only (4 bytes a slot), and a probe compares the key through `keys`:
/// keeping each key beside its id took 12 bytes a slot, 2.4 MB more at 10 000 devices.
struct SeriesIndex: Sendable {
    private static let empty: Int32 = -1
    private var slots: [Int32] = []
    /// Id → key.
    private(set) var keys: [SeriesKey] = []
    /// Ids in key order, as of the last `sortedIDs()`; later ids wait in `unsorted`.
    private var sorted: [Int32] = []
    private var unsorted: [Int32] = []

    var count: Int { keys.count }

    private func slot(for raw: Int64) -> Int {
        let hash = UInt64(bitPattern: raw) &* 0x9E37_79B9_7F4A_7C15
        return Int(hash.multipliedFullWidth(by: UInt64(slots.count)).high)
    }

    func find(_ key: SeriesKey) -> Int32? {
        guard !slots.isEmpty else { return nil }
        var index = slot(for: key.rawValue)
        while true {
            let found = slots[index]
            if found == Self.empty { return nil }
            if keys[Int(found)] == key { return found }
            index += 1
            if index == slots.count { index = 0 }
        }
    }

    /// The series' id, made on first sight.
    mutating func id(for key: SeriesKey) -> Int32 {
        if slots.isEmpty { grow() }
        var index = slot(for: key.rawValue)
        while true {
            let found = slots[index]
            if found == Self.empty { break }
            if keys[Int(found)] == key { return found }
            index += 1
            if index == slots.count { index = 0 }
        }
        let id = Int32(keys.count)
        slots[index] = id
        keys.append(key)
        unsorted.append(id)
        if keys.count * 5 > slots.count * 4 { grow() }
        return id
    }

    private mutating func grow() {
        let capacity = max(1_024, slots.count + slots.count / 2)
        slots = Array(repeating: Self.empty, count: capacity)
        for (id, key) in keys.enumerated() {
            var index = slot(for: key.rawValue)
            while slots[index] != Self.empty {
                index += 1
                if index == slots.count { index = 0 }
            }
            slots[index] = Int32(id)
        }
    }

    /// Every id in key order (merging those added since the last call: a few per window once
    /// the fleet is known, so this is a copy, not a sort).
    mutating func sortedIDs() -> [Int32] {
        guard !unsorted.isEmpty else { return sorted }
        let keys = keys
        unsorted.sort { keys[Int($0)] < keys[Int($1)] }
        var merged: [Int32] = []
        merged.reserveCapacity(sorted.count + unsorted.count)
        var i = 0
        var j = 0
        while i < sorted.count || j < unsorted.count {
            if j == unsorted.count || (i < sorted.count && keys[Int(sorted[i])] < keys[Int(unsorted[j])]) {
                merged.append(sorted[i])
                i += 1
            } else {
                merged.append(unsorted[j])
                j += 1
            }
        }
        sorted = merged
        unsorted.removeAll()
        return sorted
    }
}
