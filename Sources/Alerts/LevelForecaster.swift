/// What the recent trend of a gauge says about the coming hour.
public struct LevelForecast: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// A significant rise: minutes to the thresholds are given.
        case rising
        /// Flat within the noise, and the noise is small.
        case steady
        case falling
        /// Too few points, or too short a span, to say anything.
        case insufficient
        /// The points scatter too much for the slope to mean anything.
        case noisy
    }

    public var status: Status
    public var slopeCmPerMin: Double?
    /// The trend line's level at the newest point (robust to a single outlier).
    public var levelCm: Double?
    public var minutesToWarning: Double?
    public var minutesToAlarm: Double?
    public var points: Int
    /// Why, in words: what a dashboard shows next to a missing number.
    public var detail: String

    public static let none = LevelForecast(
        status: .insufficient, slopeCmPerMin: nil, levelCm: nil, minutesToWarning: nil, minutesToAlarm: nil, points: 0,
        detail: "no readings yet")
}

/// A robust trend over a sliding window of levels: Theil–Sen (the median of all pairwise
/// slopes), which ignores up to ~29 % outliers, with the residuals' median absolute deviation
/// as the noise. The window keeps one point per `window / 120` (the newest), so the pairwise
/// work stays under 7 200 slopes whatever the gauge's rate.
public struct LevelForecaster: Sendable {
    public let windowMs: Int64
    let bucketMs: Int64
    private(set) var points: [(ts: Int64, level: Double)] = []

    public static let minimumPoints = 6
    public static let minimumSpanMs: Int64 = 5 * 60_000
    /// Flatter than this (cm/min) is steady, whatever the significance.
    public static let steadySlope = 0.05
    /// Noise (robust σ, cm) above which an insignificant slope is called noisy, not steady.
    public static let noiseLimitCm = 2.0

    public init(windowMs: Int64) {
        self.windowMs = max(60_000, windowMs)
        bucketMs = max(1, self.windowMs / 120)
    }

    public mutating func add(tsMs: Int64, levelCm: Double) {
        if let last = points.last {
            guard tsMs >= last.ts else { return }
            if tsMs / bucketMs == last.ts / bucketMs {
                points[points.count - 1] = (tsMs, levelCm)
                return
            }
        }
        points.append((tsMs, levelCm))
        let horizon = tsMs - windowMs
        if let keep = points.firstIndex(where: { $0.ts >= horizon }), keep > 0 { points.removeFirst(keep) }
    }

    public func forecast(warningCm: Double, alarmCm: Double) -> LevelForecast {
        var result = LevelForecast.none
        result.points = points.count
        guard let first = points.first, let last = points.last, points.count >= Self.minimumPoints,
            last.ts - first.ts >= Self.minimumSpanMs
        else {
            result.detail =
                "\(points.count) points over \((points.last.map { $0.ts - (points.first?.ts ?? $0.ts) } ?? 0) / 60_000) min; "
                + "a forecast needs \(Self.minimumPoints) over \(Self.minimumSpanMs / 60_000) min"
            return result
        }
        var slopes: [Double] = []
        slopes.reserveCapacity(points.count * (points.count - 1) / 2)
        for i in 0..<points.count {
            for j in (i + 1)..<points.count where points[j].ts > points[i].ts {
                slopes.append((points[j].level - points[i].level) / Double(points[j].ts - points[i].ts))
            }
        }
        let slope = Self.median(&slopes)
        var offsets = points.map { $0.level - slope * Double($0.ts - first.ts) }
        let intercept = Self.median(&offsets)
        var residuals = points.map { abs($0.level - (intercept + slope * Double($0.ts - first.ts))) }
        let sigma = Self.median(&residuals) * 1.4826
        let perMinute = slope * 60_000
        let level = intercept + slope * Double(last.ts - first.ts)
        let rise = abs(slope) * Double(last.ts - first.ts)
        result.slopeCmPerMin = perMinute
        result.levelCm = level
        let significant = rise >= 3 * sigma && abs(perMinute) >= Self.steadySlope
        if !significant {
            if sigma > Self.noiseLimitCm {
                result.status = .noisy
                result.detail = "the levels scatter by ±\(Self.rounded(sigma)) cm: no trend can be told apart from that"
            } else {
                result.status = .steady
                result.detail = "flat within ±\(Self.rounded(max(sigma, 0))) cm over \(points.count) points"
            }
            return result
        }
        if perMinute < 0 {
            result.status = .falling
            result.detail = "falling \(Self.rounded(-perMinute)) cm/min"
            return result
        }
        result.status = .rising
        result.minutesToWarning = max(0, (warningCm - level) / perMinute)
        result.minutesToAlarm = max(0, (alarmCm - level) / perMinute)
        result.detail = "rising \(Self.rounded(perMinute)) cm/min over \(points.count) points"
        return result
    }

    static func median(_ values: inout [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        values.sort()
        let middle = values.count / 2
        return values.count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2
    }

    static func rounded(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}
