import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A token bucket over bytes: the gateway's OTA traffic never exceeds `ota.max_bytes_per_second`
/// averaged over a second, so firmware cannot crowd telemetry off a shared uplink or radio.
/// Used by one thread only (the block sender).
struct TokenBucket {
    let rate: Double
    let capacity: Double
    private var tokens: Double
    private var lastNanos: UInt64

    /// `rate` 0 means unlimited.
    init(bytesPerSecond: Int, burstBytes: Int) {
        rate = Double(bytesPerSecond)
        capacity = Double(max(bytesPerSecond, burstBytes))
        tokens = capacity
        lastNanos = monotonicNanos()
    }

    /// Waits until `bytes` may be sent; returns the nanoseconds waited.
    mutating func take(_ bytes: Int) -> UInt64 {
        guard rate > 0 else { return 0 }
        refill()
        let need = Double(bytes)
        guard tokens < need else {
            tokens -= need
            return 0
        }
        let waitNanos = UInt64((need - tokens) / rate * 1e9)
        var request = timespec(tv_sec: Int(waitNanos / 1_000_000_000), tv_nsec: Int(waitNanos % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
        refill()
        tokens -= need
        return waitNanos
    }

    private mutating func refill() {
        let now = monotonicNanos()
        tokens = min(capacity, tokens + Double(now - lastNanos) / 1e9 * rate)
        lastNanos = now
    }
}
