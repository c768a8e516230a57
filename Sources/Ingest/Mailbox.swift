public import Advisories
import Logging
public import RingStore
public import Telemetry
import Threads

#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Requests from other threads (the API's) to the ingest thread, which owns the store's
/// writer and the engines. `submit` waits until the ingest thread has answered, so the API
/// answers only for what took effect.
public final class Mailbox<Request: Sendable, Reply: Sendable>: @unchecked Sendable {
    private let condition = ConditionLock()
    private var pending: [(request: Request, ticket: Int)] = []
    private var nextTicket = 1
    private var replies: [Int: Reply] = [:]
    /// Tickets whose submitter gave up waiting: their reply is dropped when it comes.
    private var abandoned: Set<Int> = []

    public init() {}

    /// The ingest thread's reply, or nil when it did not answer within `timeout` seconds (the
    /// request may still be carried out later).
    public func submit(_ request: Request, timeout: TimeInterval = 5) -> Reply? {
        condition.lock()
        defer { condition.unlock() }
        let ticket = nextTicket
        nextTicket += 1
        pending.append((request, ticket))
        let deadline = monotonicNanos() + UInt64(max(0, timeout) * 1e9)
        while replies[ticket] == nil {
            guard condition.wait(untilMonotonicNanos: deadline) else {
                abandoned.insert(ticket)
                return nil
            }
        }
        return replies.removeValue(forKey: ticket)
    }

    /// True when something waits (cheap: the ingest thread asks on every round).
    var hasPending: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !pending.isEmpty
    }

    /// Everything submitted so far (called by the ingest thread, never blocks).
    func take() -> [(request: Request, ticket: Int)] {
        condition.lock()
        defer { condition.unlock() }
        let taken = pending
        pending.removeAll()
        return taken
    }

    func answer(_ ticket: Int, _ reply: Reply) {
        condition.lock()
        if abandoned.remove(ticket) == nil { replies[ticket] = reply }
        condition.broadcast()
        condition.unlock()
    }
}

/// Gauge sites set through the API; the reply says whether the site was stored.
public typealias SiteMailbox = Mailbox<GaugeSite, Bool>

/// A vehicle to forget (`POST /v1/devices/{id}/forget`), and the name of the token that asked:
/// the log keeps who erased, never whom.
public struct ErasureRequest: Sendable {
    public var vin: VIN
    public var requestedBy: String

    public init(vin: VIN, requestedBy: String) {
        self.vin = vin
        self.requestedBy = requestedBy
    }
}

/// Vehicles to forget; the reply says what was removed.
public typealias ErasureMailbox = Mailbox<ErasureRequest, Result<ErasureReport, StoreError>>
