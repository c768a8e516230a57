/// Holds back a change of state until the new state has been observed continuously for the
/// dwell time: the debounce that keeps a noisy gauge from flapping.
public struct DwellFilter<State: Equatable & Sendable>: Sendable {
    public private(set) var current: State
    private var candidate: State?
    private var candidateSince: Int64 = 0
    public let dwellMs: Int64

    public init(initial: State, dwellMs: Int64) {
        current = initial
        self.dwellMs = dwellMs
    }

    /// Feeds the state the latest reading points to; returns the new state when it changes.
    public mutating func observe(_ target: State, at tsMs: Int64) -> State? {
        guard target != current else {
            candidate = nil
            return nil
        }
        if candidate != target {
            candidate = target
            candidateSince = tsMs
        }
        guard tsMs - candidateSince >= dwellMs else { return nil }
        current = target
        candidate = nil
        return target
    }

    /// Sets the state directly (restored from the store after a restart).
    public mutating func restore(_ state: State) {
        current = state
        candidate = nil
    }
}
