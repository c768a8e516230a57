import JSON
public import RingStore
public import Telemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A forgotten vehicle, as the upstream link sees it: queued messages lose its records, and
/// the city side gets a notice (`erasures`) listing every name the vehicle may have had
/// upstream, so that it can erase what it already received.
extension UpstreamMessages {
    /// `sinceMs` is the earliest time the board knows of the vehicle: its pseudonyms are those
    /// of the periods from one before that time's to one after now's (a record is named by its
    /// own time, and an advisory by its incident's start, which may precede it).
    public static func erasure(of vin: VIN, sinceMs: Int64, nowMs: Int64, identity: UpstreamIdentity)
        -> OutboxErasure
    {
        var names: [String] = []
        if let pseudonyms = identity.pseudonyms {
            let first = pseudonyms.period(atMs: min(sinceMs, nowMs)) - 1
            let last = pseudonyms.period(atMs: nowMs) + 1
            names = (first...last).map { pseudonyms.pseudonym(of: vin.value, atMs: $0 * pseudonyms.periodMs) }
        } else {
            names = [vin.value]
        }
        // The plain VIN too: the setting may have been `plain` when older messages were queued.
        let matches = Set(names + [vin.value])
        let notice = OutboxMessage(
            priority: .alert, topic: "erasures",
            payload: bytes(
                .object(
                    JSONObject([
                        ("erasure_id", .string(batchID(identity.gatewayID))),
                        ("gateway_id", .string(identity.gatewayID)),
                        ("vehicles", .array(names.map { .string($0) })), ("ts_ms", .int(nowMs)),
                    ]))))
        return OutboxErasure(
            scrub: { scrub($0, removing: matches) }, notice: notice, names: names.count, matches: Array(matches))
    }

    /// A queued message without the records of `names`: an alert naming one goes whole, a batch
    /// loses those items (and goes whole when nothing else is left in it).
    static func scrub(_ payload: [UInt8], removing names: Set<String>) -> OutboxScrub {
        guard case .object(var object)? = try? JSONParser.parse(payload) else { return .keep }
        if let device = object["device"]?.string, names.contains(device) { return .drop }
        guard let items = object["items"]?.arrayValue else { return .keep }
        let kept = items.filter { item in
            guard let device = item["device"]?.string else { return true }
            return !names.contains(device)
        }
        if kept.count == items.count { return .keep }
        if kept.isEmpty { return .drop }
        object["items"] = .array(kept)
        return .rewrite(bytes(.object(object)))
    }
}
