public import RingStore

/// Where committed data goes upstream: how a commit becomes outbox messages (queued in the
/// commit's own transaction, so nothing stored can miss them) and whom to wake once they are
/// queued. The ingest path knows nothing else of the upstream link; without one it is nil.
public struct OutboxRoute: Sendable {
    public var encode: @Sendable (CommitSummary, IngestBatch) -> [OutboxMessage]
    public var notify: @Sendable () -> Void

    public init(
        encode: @escaping @Sendable (CommitSummary, IngestBatch) -> [OutboxMessage],
        notify: @escaping @Sendable () -> Void
    ) {
        self.encode = encode
        self.notify = notify
    }
}
