import Telemetry

/// A token bucket per device: a unit that floods (a firmware loop, a replay attack with a
/// stolen identity) is refused above its own rate, and the others never notice.
///
/// Owned by the ingest thread, so it needs no lock. Entries exist only for devices the store
/// admitted, so `store.max_devices` bounds its memory too.
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
    private var buckets: [DeviceID: Bucket] = [:]

    init(ratePerSecond: Double, burst: Int64) {
        ratePerNano = ratePerSecond / 1e9
        self.burst = Double(max(1, burst))
    }

    /// Takes one token for `device`; false when it has none left.
    mutating func admit(_ device: DeviceID, nowNanos: UInt64) -> Bool {
        let burst = burst
        let ratePerNano = ratePerNano
        return buckets[device, default: Bucket(tokens: burst, refilledNanos: nowNanos)].take(
            nowNanos: nowNanos, ratePerNano: ratePerNano, burst: burst)
    }

    mutating func forget(_ device: DeviceID) { buckets.removeValue(forKey: device) }

    var devices: Int { buckets.count }
}
