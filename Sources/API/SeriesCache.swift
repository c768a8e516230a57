import Synchronization

/// Recent `/v1/series` bodies, kept for a short time.
///
/// Dashboards ask for the same series over and over (every viewer, every refresh, with
/// `from=now-24h`); once from and to are aligned to the step, those requests are identical
/// for a whole step. Serving them from here for up to `ttlMs` (1 s by default) turns a day of
/// buckets from ~1 ms of work into a copy. A request with `Cache-Control: no-cache` skips it.
///
/// When an entry expires, the first request recomputes it while the others keep getting the
/// old body (for at most `5 × ttlMs`), so an expiry does not make every waiting dashboard
/// compute the same day of buckets at once.
final class SeriesCache: Sendable {
    struct Key: Hashable {
        var device: Int64
        var signal: Int
        var fromMs: Int64
        var toMs: Int64
        var stepMs: Int64
    }

    struct Entry {
        var body: [UInt8]
        var source: String
        var storedNanos: UInt64
        /// A request is recomputing this entry; others may serve it meanwhile.
        var refreshing = false
    }

    let ttlNanos: UInt64
    let maxEntries: Int
    private let entries = Mutex<[Key: Entry]>([:])
    private let counters = Mutex<(hits: Int64, misses: Int64)>((0, 0))

    init(ttlMs: Int, maxEntries: Int = 256) {
        self.ttlNanos = UInt64(max(0, ttlMs)) * 1_000_000
        self.maxEntries = maxEntries
    }

    var isEnabled: Bool { ttlNanos > 0 }

    func lookup(_ key: Key, nowNanos: UInt64) -> Entry? {
        guard isEnabled else { return nil }
        let entry = entries.withLock { table -> Entry? in
            guard var entry = table[key] else { return nil }
            let age = nowNanos &- entry.storedNanos
            if age < ttlNanos { return entry }
            if entry.refreshing && age < 5 * ttlNanos { return entry }
            // Stale: this caller recomputes; the others keep the old body until it is done.
            entry.refreshing = true
            table[key] = entry
            return nil
        }
        counters.withLock { entry == nil ? ($0.misses += 1) : ($0.hits += 1) }
        return entry
    }

    /// Drops every body: after an erasure, the erased device's row id may be given to a new one.
    func removeAll() {
        entries.withLock { $0.removeAll() }
    }

    func store(_ key: Key, _ entry: Entry) {
        guard isEnabled else { return }
        entries.withLock { table in
            if table.count >= maxEntries {
                // Expired first; if none, the oldest.
                let expired = table.filter { entry.storedNanos &- $0.value.storedNanos >= 5 * ttlNanos }.map(\.key)
                if expired.isEmpty, let oldest = table.min(by: { $0.value.storedNanos < $1.value.storedNanos }) {
                    table[oldest.key] = nil
                } else {
                    for key in expired { table[key] = nil }
                }
            }
            table[key] = entry
        }
    }

    var stats: (hits: Int64, misses: Int64) { counters.withLock { $0 } }
}
