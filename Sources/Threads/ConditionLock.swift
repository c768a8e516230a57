#if canImport(Glibc)
    import Glibc
#endif

/// A mutex with a condition variable, for where a thread must sleep until another hands it
/// work or room: the inbound buffer between libmosquitto's thread and the pipeline, the API's
/// pool of store readers, a gauge-site change waiting for the ingest thread. `Mutex` from
/// Synchronization has no condition, and Foundation's `NSCondition` would pull in all of
/// Foundation, hence this small wrapper.
public final class ConditionLock: @unchecked Sendable {
    // Heap-allocated so their addresses never move, as pthreads requires.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    public func broadcast() { pthread_cond_broadcast(condition) }
    public func signal() { pthread_cond_signal(condition) }

    /// Waits (lock held) until woken.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits (lock held) until woken or until the monotonic deadline; false on timeout.
    @discardableResult
    public func wait(untilMonotonicNanos deadline: UInt64) -> Bool {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(condition, mutex, &time) == 0
    }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
