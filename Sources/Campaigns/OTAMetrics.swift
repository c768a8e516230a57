public import Synchronization

/// Counters of the OTA service, exported on `/metrics`.
public final class OTAMetrics: Sendable {
    public let blocksServed = Atomic<UInt64>(0)
    public let bytesServed = Atomic<UInt64>(0)
    /// Block requests for a campaign or file the vehicle does not hold, or blocks out of range.
    public let requestsRefused = Atomic<UInt64>(0)
    /// Block requests dropped because the send queue was full (the vehicle asks again).
    public let requestsDropped = Atomic<UInt64>(0)
    /// Requested blocks already queued for the same vehicle (a repeat request), served once.
    public let blocksDeduplicated = Atomic<UInt64>(0)
    public let malformedMessages = Atomic<UInt64>(0)
    public let reports = Atomic<UInt64>(0)
    public let offersPublished = Atomic<UInt64>(0)
    public let throttledNanos = Atomic<UInt64>(0)
    public let readErrors = Atomic<UInt64>(0)
    public let publishErrors = Atomic<UInt64>(0)
    /// Fleet OTA over the city link, when `ota.fleet` is on (nil otherwise): kept by the
    /// Fleet module's link, exported with the other OTA families.
    public let fleet = Mutex<FleetCounters?>(nil)

    public init() {}

    static func add(_ counter: borrowing Atomic<UInt64>, _ value: UInt64 = 1) {
        counter.wrappingAdd(value, ordering: .relaxed)
    }
}

/// What the fleet link did since start.
public struct FleetCounters: Sendable {
    public var ordersApplied: Int64 = 0
    /// Releases and orders refused, by code (`bad_signature`, `unsigned`, `replayed`, ...).
    public var refused: [String: Int64] = [:]
    /// Announcements received again (the broker's redelivery), taken once.
    public var duplicates: Int64 = 0
    public var chunks: Int64 = 0
    public var bytesFetched: Int64 = 0
    public var fetchRequests: Int64 = 0
    public var reportsSent: Int64 = 0
    /// Refusal reports not queued because the report backlog was at its cap.
    public var reportsDropped: Int64 = 0
    public var releasesVerified: Int64 = 0
    public var connected = false
    /// Reports not yet acknowledged by the city broker.
    public var backlog: Int64 = 0

    public init() {}
}
