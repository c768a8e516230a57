public import RingStore
public import Telemetry

/// Where committed data goes upstream: how a commit becomes outbox messages (queued in the
/// commit's own transaction, so nothing stored can miss them) and whom to wake once they are
/// queued. The ingest path knows nothing else of the upstream link; without one it is nil.
public struct OutboxRoute: Sendable {
    public var encode: @Sendable (CommitSummary, IngestBatch) -> [OutboxMessage]
    public var notify: @Sendable () -> Void
    /// How a forgotten vehicle leaves the outbox, given the earliest time it was known from.
    public var erasure: (@Sendable (VIN, Int64) -> OutboxErasure)?

    public init(
        encode: @escaping @Sendable (CommitSummary, IngestBatch) -> [OutboxMessage],
        notify: @escaping @Sendable () -> Void,
        erasure: (@Sendable (VIN, Int64) -> OutboxErasure)? = nil
    ) {
        self.encode = encode
        self.notify = notify
        self.erasure = erasure
    }
}
