public import Advisories
import Logging
import Threads

#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Gauge sites set through the API, on their way to the ingest thread (which owns the
/// advisory engine and the store's writer). `submit` waits until the ingest thread has
/// applied and stored the site, so the API can answer 200 only for what took effect.
public final class SiteMailbox: @unchecked Sendable {
    private let condition = ConditionLock()
    private var pending: [(site: GaugeSite, ticket: Int)] = []
    private var nextTicket = 1
    private var appliedThrough = 0
    private var failed: Set<Int> = []

    public init() {}

    /// False when the ingest thread did not apply it within `timeout` seconds, or could not store it.
    public func submit(_ site: GaugeSite, timeout: TimeInterval = 5) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let ticket = nextTicket
        nextTicket += 1
        pending.append((site, ticket))
        let deadline = monotonicNanos() + UInt64(max(0, timeout) * 1e9)
        while appliedThrough < ticket {
            guard condition.wait(untilMonotonicNanos: deadline) else { return false }
        }
        return !failed.contains(ticket)
    }

    /// Everything submitted so far (called by the ingest thread, never blocks).
    func take() -> [(site: GaugeSite, ticket: Int)] {
        condition.lock()
        defer { condition.unlock() }
        let taken = pending
        pending.removeAll()
        return taken
    }

    func finish(through ticket: Int, failed tickets: [Int]) {
        condition.lock()
        appliedThrough = max(appliedThrough, ticket)
        failed.formUnion(tickets)
        condition.broadcast()
        condition.unlock()
    }
}
