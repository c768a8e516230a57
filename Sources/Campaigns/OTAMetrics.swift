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

    public init() {}

    static func add(_ counter: borrowing Atomic<UInt64>, _ value: UInt64 = 1) {
        counter.wrappingAdd(value, ordering: .relaxed)
    }
}
