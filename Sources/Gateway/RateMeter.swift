import Logging
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Rates over about the last minute, from counter samples taken every few seconds.
final class RateMeter: Sendable {
    private struct Sample {
        var nanos: UInt64
        var readings: Int64
        var outboxBytes: Int64
    }

    private let samples = Mutex<[Sample]>([])
    private let spanNanos: UInt64 = 60_000_000_000

    func sample(readings: Int64, outboxBytes: Int64) {
        let now = monotonicNanos()
        samples.withLock { samples in
            samples.append(Sample(nanos: now, readings: readings, outboxBytes: outboxBytes))
            while samples.count > 2, now - samples[1].nanos >= spanNanos { samples.removeFirst() }
        }
    }

    /// Readings per second and outbox growth in bytes per second (0 until two samples exist).
    func rates() -> (readings: Double, outboxBytes: Double) {
        samples.withLock { samples in
            guard let first = samples.first, let last = samples.last, last.nanos > first.nanos else { return (0, 0) }
            let seconds = Double(last.nanos - first.nanos) / 1e9
            return (
                Double(last.readings - first.readings) / seconds, Double(last.outboxBytes - first.outboxBytes) / seconds
            )
        }
    }
}
