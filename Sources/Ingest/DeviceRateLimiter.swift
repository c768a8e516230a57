import RingStore
import Telemetry

/// A token bucket per device: a unit that floods (a firmware loop, a replay attack with a
/// stolen identity) is refused above its own rate, and the others never notice.
///
/// Owned by the ingest thread, so it needs no lock. Entries exist only for devices the store
/// admitted, so `store.max_devices` bounds its memory too (with the holes erased devices
/// leave in the row ids).
struct DeviceRateLimiter {
    private struct Bucket {
        var tokens: Double
        var refilledNanos: UInt64

        mutating func take(nowNanos: UInt64, ratePerNano: Double, burst: Double) -> Bool {
            if nowNanos > refilledNanos {
                tokens = min(burst, tokens + Double(nowNanos - refilledNanos) * ratePerNano)
                refilledNanos = nowNanos
            }
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }

    private let ratePerNano: Double
    private let burst: Double
    /// Devices the store has a row for, at their row id: 24 bytes a device, where a dictionary
    /// keyed by name cost about 150 (its buckets and a copy of each name).
    private var known = DeviceSlots<Bucket?>(empty: nil)
    /// Devices first seen since the last commit, which have no row id yet.
    private var fresh: [DeviceID: Bucket] = [:]

    init(ratePerSecond: Double, burst: Int64) {
        ratePerNano = ratePerSecond / 1e9
        self.burst = Double(max(1, burst))
    }

    /// Takes one token for `device` (at `rowID` when the store knows it); false when it has
    /// none left.
    mutating func admit(_ device: DeviceID, rowID: Int64?, nowNanos: UInt64) -> Bool {
        let burst = burst
        let ratePerNano = ratePerNano
        let full = Bucket(tokens: burst, refilledNanos: nowNanos)
        guard let rowID else {
            return fresh[device, default: full].take(nowNanos: nowNanos, ratePerNano: ratePerNano, burst: burst)
        }
        var bucket = known[rowID] ?? full
        let taken = bucket.take(nowNanos: nowNanos, ratePerNano: ratePerNano, burst: burst)
        known[rowID] = bucket
        return taken
    }

    /// After a commit: the devices it stored for the first time take their buckets to their
    /// row ids, so a new device's burst is not granted twice.
    mutating func settle(rowID: (DeviceID) -> Int64?) {
        for (device, bucket) in fresh {
            if let id = rowID(device) { known[id] = bucket }
        }
        fresh.removeAll(keepingCapacity: true)
    }

    mutating func forget(_ device: DeviceID, rowID: Int64?) {
        fresh.removeValue(forKey: device)
        if let rowID { known[rowID] = nil }
    }
}
