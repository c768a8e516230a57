public import Advisories
public import Alerts
public import Telemetry

/// What the pipeline hands the store in one transaction.
///
/// Reused from batch to batch (`removeAll(keepingCapacity:)`), so the hot path does not
/// reallocate its arrays for every flush.
public struct IngestBatch: Sendable {
    public enum Item: Sendable {
        case readings(device: DeviceID, ts: Int64, seq: UInt32, readings: [Reading])
        case troubleCodes(device: DeviceID, ts: Int64, seq: UInt32, codes: [TroubleCode])
        case hello(device: DeviceID, firmware: String, hardware: String, model: String?, nextSeq: UInt32?)
    }

    public struct RejectRecord: Sendable {
        public var tsMs: Int64
        public var topic: String
        public var reason: RejectReason
        public var detail: String
        public var payloadHead: [UInt8]

        public init(tsMs: Int64, topic: String, reason: RejectReason, detail: String, payloadHead: [UInt8]) {
            self.tsMs = tsMs
            self.topic = topic
            self.reason = reason
            self.detail = detail
            self.payloadHead = payloadHead
        }
    }

    public private(set) var items: [Item] = []
    /// Each item's device row id as the pipeline found it when admitting the message (-1: not
    /// known then), so the commit need not hash the device's name again. A hint only: the
    /// commit uses it when the row there is still this device's.
    public private(set) var rowHints: [Int64] = []
    public var rejects: [RejectRecord] = []
    /// Alert raises and clears decided on this batch's readings (or by the clock).
    public var alerts: [AlertEvent] = []
    /// Flooded-road advisories decided on this batch: stored as events of the vehicle, sent
    /// upstream, and published to the vehicles once the batch is committed.
    public var advisories: [Advisory] = []
    /// Readings in `items`, kept up to date by `append` so flush decisions are O(1).
    public private(set) var readingCount = 0

    public init() {}

    public var isEmpty: Bool { items.isEmpty && rejects.isEmpty && alerts.isEmpty && advisories.isEmpty }

    public mutating func append(_ item: Item, rowID: Int64? = nil) {
        if case .readings(_, _, _, let readings) = item { readingCount += readings.count }
        items.append(item)
        rowHints.append(rowID ?? -1)
    }

    public mutating func append(reject: RejectRecord) {
        rejects.append(reject)
    }

    public mutating func removeAll() {
        items.removeAll(keepingCapacity: true)
        rowHints.removeAll(keepingCapacity: true)
        rejects.removeAll(keepingCapacity: true)
        alerts.removeAll(keepingCapacity: true)
        advisories.removeAll(keepingCapacity: true)
        readingCount = 0
    }
}

/// An alert event as stored: its id is unique for the gateway's lifetime, so the receiver
/// can de-duplicate a re-sent event.
public struct StoredAlert: Sendable, Equatable {
    public var alertID: String
    public var event: AlertEvent

    public init(alertID: String, event: AlertEvent) {
        self.alertID = alertID
        self.event = event
    }
}

/// What one commit did, for metrics and logs.
public struct CommitSummary: Sendable, Equatable {
    public var readingsStored = 0
    /// Of `readingsStored`, those from water sensors (the rest are vehicles').
    public var waterReadingsStored = 0
    public var readingsEvicted = 0
    public var messagesStored = 0
    public var duplicatesSkipped = 0
    public var newGaps: Int64 = 0
    public var resets = 0
    public var eventsStored = 0
    public var rejectsStored = 0
    public var newDevices = 0
    /// Closed windows stored or revised by this commit, for the upstream link.
    public var aggregates: [AggregateRow] = []
    /// Alert events stored by this commit, with their ids.
    public var alerts: [StoredAlert] = []
    /// Messages this commit added to the upstream outbox (net of drops), and drops for the cap.
    public var outboxMessages = 0
    public var outboxDropped: Int64 = 0
    /// Position rows erased by this commit's retention sweep.
    public var positionsErased = 0
    /// Set when this commit ran the retention sweep: positions older than this are gone.
    public var positionCutoffMs: Int64?

    public init() {}
}
