import JSON
import Logging
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
public enum UpstreamMessages {
    static let maxItemsPerBatch = 500

    public static func encode(summary: CommitSummary, batch: IngestBatch, gatewayID: String) -> [OutboxMessage] {
        var messages: [OutboxMessage] = []
        for stored in summary.alerts {
            let event = stored.event
            var object = JSONObject([
                ("alert_id", .string(stored.alertID)), ("gateway_id", .string(gatewayID)),
                ("device", .string(event.device)),
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
                for code in codes {
                    events.append(
                        .object(
                            JSONObject([
                                ("device", .string(device.name)), ("type", .string("dtc")),
                                ("detail", .string(code.description)), ("ts_ms", .int(ts)),
                            ])))
                }
            case .hello(let device, let firmware, let hardware, _, _):
                events.append(
                    .object(
                        JSONObject([
                            ("device", .string(device.name)), ("type", .string("online")),
                            ("detail", .string("fw \(firmware) hw \(hardware)")), ("ts_ms", .int(wallClockMs())),
                        ])))
            case .readings: continue
            }
        }
        for advisory in batch.advisories {
            events.append(
                .object(
                    JSONObject([
                        ("device", .string(advisory.vin)), ("type", .string("advisory")),
                        ("detail", .string("\(advisory.sensor) \(advisory.state.rawValue)")),
                        ("advisory_id", .string(advisory.advisoryID)), ("sensor", .string(advisory.sensor)),
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
                        ("device", .string(row.device)), ("signal", .string(row.signal)),
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
