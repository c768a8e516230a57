import JSON
import Logging
public import Privacy
public import RingStore
import Telemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The upstream wire format: what the city's cloud receives on `{prefix}/{gateway_id}/…`.
///
/// Aggregates go in batches with a unique `batch_id` (a re-sent batch keeps its id, so the
/// receiver de-duplicates); each item carries `revision`, so the receiver upserts by
/// (gateway, device, signal, window_s, start_ms) and keeps the highest. Alerts go one per
/// message with an `alert_id` that never repeats.
/// Who the gateway is upstream, and how vehicles are named there: VINs are personal data
/// (a VIN with positions and times is a track of a person), so by default they leave the board
/// only as keyed pseudonyms (`Pseudonymizer`); `privacy.upstream_vin: plain` turns that off.
public struct UpstreamIdentity: Sendable {
    public var gatewayID: String
    /// nil: VINs go upstream as they are.
    public var pseudonyms: Pseudonymizer?

    public init(gatewayID: String, pseudonyms: Pseudonymizer?) {
        self.gatewayID = gatewayID
        self.pseudonyms = pseudonyms
    }

}

/// Names already computed for one encoding: a batch names the same vehicle once per signal,
/// and each name costs two HMACs.
struct VehicleNames {
    let identity: UpstreamIdentity
    private var names: [String: [Int64: String]] = [:]

    init(_ identity: UpstreamIdentity) { self.identity = identity }

    mutating func name(_ vin: String, atMs: Int64) -> String {
        guard let pseudonyms = identity.pseudonyms else { return vin }
        let period = pseudonyms.period(atMs: atMs)
        if let known = names[vin]?[period] { return known }
        let name = pseudonyms.pseudonym(of: vin, atMs: atMs)
        names[vin, default: [:]][period] = name
        return name
    }
}

public enum UpstreamMessages {
    static let maxItemsPerBatch = 500

    public static func encode(summary: CommitSummary, batch: IngestBatch, identity: UpstreamIdentity) -> [OutboxMessage]
    {
        let gatewayID = identity.gatewayID
        var names = VehicleNames(identity)
        var messages: [OutboxMessage] = []
        for stored in summary.alerts {
            let event = stored.event
            let device =
                switch event.type {
                case .dtc, .milOn, .coolant: names.name(event.device, atMs: event.tsMs)
                default: event.device
                }
            var object = JSONObject([
                ("alert_id", .string(stored.alertID)), ("gateway_id", .string(gatewayID)),
                ("device", .string(device)),
                ("type", .string(event.type.rawValue)), ("state", .string(event.state.rawValue)),
                ("value", .double(event.value)), ("ts_ms", .int(event.tsMs)),
            ])
            if !event.subject.isEmpty { object["subject"] = .string(event.subject) }
            messages.append(OutboxMessage(priority: .alert, topic: "alerts", payload: bytes(.object(object))))
        }
        var events: [JSONValue] = []
        for item in batch.items {
            switch item {
            case .troubleCodes(let device, let ts, _, let codes):
                let name = names.name(device.name, atMs: ts)
                for code in codes {
                    events.append(
                        .object(
                            JSONObject([
                                ("device", .string(name)), ("type", .string("dtc")),
                                ("detail", .string(code.description)), ("ts_ms", .int(ts)),
                            ])))
                }
            case .hello(let device, let firmware, let hardware, _, _):
                let now = wallClockMs()
                let name = device.kind == .vehicle ? names.name(device.name, atMs: now) : device.name
                events.append(
                    .object(
                        JSONObject([
                            ("device", .string(name)), ("type", .string("online")),
                            ("detail", .string("fw \(firmware) hw \(hardware)")), ("ts_ms", .int(now)),
                        ])))
            case .readings: continue
            }
        }
        for advisory in batch.advisories {
            // One name for the whole incident: the pseudonym of its start.
            let name = names.name(advisory.vin, atMs: advisory.incidentStartMs)
            let advisoryID = advisory.advisoryID.split(separator: advisory.vin, omittingEmptySubsequences: false)
                .joined(separator: name)
            events.append(
                .object(
                    JSONObject([
                        ("device", .string(name)), ("type", .string("advisory")),
                        ("detail", .string("\(advisory.sensor) \(advisory.state.rawValue)")),
                        ("advisory_id", .string(advisoryID)), ("sensor", .string(advisory.sensor)),
                        ("state", .string(advisory.state.rawValue)), ("level_cm", .double(advisory.levelCm)),
                        ("distance_m", .double((advisory.distanceM * 10).rounded() / 10)),
                        ("ts_ms", .int(advisory.tsMs)),
                    ])))
        }
        if !events.isEmpty {
            messages.append(
                OutboxMessage(
                    priority: .event, topic: "events",
                    payload: bytes(
                        .object(
                            JSONObject([
                                ("batch_id", .string(batchID(gatewayID))), ("gateway_id", .string(gatewayID)),
                                ("items", .array(events)),
                            ])))))
        }
        var start = 0
        while start < summary.aggregates.count {
            let end = min(start + maxItemsPerBatch, summary.aggregates.count)
            let items = summary.aggregates[start..<end].map { row -> JSONValue in
                .object(
                    JSONObject([
                        (
                            "device",
                            .string(row.isVehicle ? names.name(row.device, atMs: row.startMs) : row.device)
                        ),
                        ("signal", .string(row.signal)),
                        ("window_s", .int(row.windowS)),
                        ("start_ms", .int(row.startMs)), ("count", .int(row.stats.count)),
                        ("min", .double(row.stats.min)),
                        ("max", .double(row.stats.max)), ("mean", .double(row.stats.mean)),
                        ("sum", .double(row.stats.sum)),
                        ("last", .double(row.stats.last)), ("revision", .int(row.revision)),
                    ]))
            }
            messages.append(
                OutboxMessage(
                    priority: .aggregate, topic: "aggregates",
                    payload: bytes(
                        .object(
                            JSONObject([
                                ("batch_id", .string(batchID(gatewayID))), ("gateway_id", .string(gatewayID)),
                                ("items", .array(items)),
                            ])))))
            start = end
        }
        return messages
    }

    static func batchID(_ gatewayID: String) -> String {
        "\(gatewayID)-\(UUID().uuidString.lowercased())"
    }

    static func bytes(_ value: JSONValue) -> [UInt8] {
        Array(value.serialized().utf8)
    }
}
