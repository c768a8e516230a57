#if canImport(Glibc)
    import Glibc
#endif

/// Nanoseconds on the monotonic clock, for deadlines and durations that a change of the
/// wall clock cannot move. Lives here because every threaded module already imports Logging.
public func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Milliseconds since the Unix epoch, on the wall clock: what timestamps stored data and
/// upstream messages. Never for durations (`monotonicNanos` is).
public func wallClockMs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
