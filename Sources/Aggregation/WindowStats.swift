/// What a window keeps of its readings: enough to merge two windows exactly (count, sum,
/// min, max, first and last time, last value), so a late reading or a rollup never needs the
/// raw readings again.
public struct WindowStats: Sendable, Equatable {
    public var count: Int64 = 0
    public var sum: Double = 0
    public var min: Double = .infinity
    public var max: Double = -.infinity
    public var firstTs: Int64 = .max
    public var lastTs: Int64 = .min
    /// The value of the reading with the latest `ts` (the first of equals keeps its place).
    public var last: Double = 0

    public init() {}

    public init(value: Double, ts: Int64) {
        add(value, ts: ts)
    }

    public init(
        count: Int64, sum: Double, min: Double, max: Double, firstTs: Int64, lastTs: Int64, last: Double
    ) {
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
        self.firstTs = firstTs
        self.lastTs = lastTs
        self.last = last
    }

    public var mean: Double { count > 0 ? sum / Double(count) : 0 }

    public mutating func add(_ value: Double, ts: Int64) {
        count += 1
        sum += value
        if value < min { min = value }
        if value > max { max = value }
        if ts < firstTs { firstTs = ts }
        if ts >= lastTs {
            lastTs = ts
            last = value
        }
    }

    public mutating func merge(_ other: WindowStats) {
        guard other.count > 0 else { return }
        count += other.count
        sum += other.sum
        if other.min < min { min = other.min }
        if other.max > max { max = other.max }
        if other.firstTs < firstTs { firstTs = other.firstTs }
        if other.lastTs >= lastTs {
            lastTs = other.lastTs
            last = other.last
        }
    }
}
