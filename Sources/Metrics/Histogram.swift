import Synchronization

/// A Prometheus histogram: fixed upper bounds, counts per bucket, a sum.
///
/// Observations take one uncontended lock and no allocation, so the ingest thread can
/// observe every flush and the HTTP threads every request.
public final class Histogram: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var bounds: [Double]
        /// Non-cumulative counts, one per bound plus the +Inf bucket.
        public var counts: [Int64]
        public var sum: Double

        public var count: Int64 { counts.reduce(0, +) }
    }

    public let bounds: [Double]
    private let state: Mutex<(counts: [Int64], sum: Double)>

    public init(bounds: [Double]) {
        precondition(!bounds.isEmpty && zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds must rise")
        self.bounds = bounds
        state = Mutex((Array(repeating: 0, count: bounds.count + 1), 0))
    }

    public func observe(_ value: Double) {
        var index = bounds.count
        for (i, bound) in bounds.enumerated() where value <= bound {
            index = i
            break
        }
        state.withLock {
            $0.counts[index] += 1
            $0.sum += value
        }
    }

    public var snapshot: Snapshot {
        state.withLock { Snapshot(bounds: bounds, counts: $0.counts, sum: $0.sum) }
    }

    /// Seconds, from 0.5 ms to 10 s: request and commit latencies.
    public static let latencyBounds: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
}

/// Counters keyed by a label tuple (HTTP route and status, reject reason ...).
public final class LabeledCounter: Sendable {
    private let state = Mutex<[[String]: Int64]>([:])

    public init() {}

    public func add(_ labels: [String], _ amount: Int64 = 1) {
        state.withLock { $0[labels, default: 0] += amount }
    }

    public var snapshot: [[String]: Int64] { state.withLock { $0 } }
}

/// Histograms keyed by a label tuple, created on first use.
public final class LabeledHistogram: Sendable {
    private let bounds: [Double]
    private let state = Mutex<[[String]: Histogram]>([:])

    public init(bounds: [Double]) {
        self.bounds = bounds
    }

    public func observe(_ labels: [String], _ value: Double) {
        let histogram = state.withLock { table in
            if let existing = table[labels] { return existing }
            let created = Histogram(bounds: bounds)
            table[labels] = created
            return created
        }
        histogram.observe(value)
    }

    public var snapshot: [[String]: Histogram.Snapshot] {
        state.withLock { $0 }.mapValues(\.snapshot)
    }
}
