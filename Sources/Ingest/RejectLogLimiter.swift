/// Keeps a flood of bad messages from flooding the log: the first reject of each reason is
/// logged at once, later ones at most once per interval with the number suppressed since.
/// Every reject is still counted and stored; only the log lines are thinned.
struct RejectLogLimiter {
    let intervalNanos: UInt64
    private var lastLogged: [String: UInt64] = [:]
    private var suppressed: [String: Int] = [:]

    init(intervalNanos: UInt64 = 10_000_000_000) {
        self.intervalNanos = intervalNanos
    }

    /// Whether to log this reject now; if so, how many of its reason were suppressed before it.
    mutating func shouldLog(reason: String, nowNanos: UInt64) -> (log: Bool, suppressed: Int) {
        if let last = lastLogged[reason], nowNanos &- last < intervalNanos {
            suppressed[reason, default: 0] += 1
            return (false, 0)
        }
        lastLogged[reason] = nowNanos
        let count = suppressed.removeValue(forKey: reason) ?? 0
        return (true, count)
    }
}
