/// A device topic the gateway understands, parsed from the MQTT topic name.
///
/// Only four-level topics `v1/{family}/{id}/{leaf}` are accepted: anything else under the
/// subscribed trees is refused as `unknown_topic`, so a misconfigured device is visible
/// instead of silently ignored.
public enum Topic: Sendable, Equatable {
    case obdPIDs(VIN)
    case obdDTC(VIN)
    case obdHello(VIN)
    case obdGPS(VIN)
    case waterLevel(SensorID)

    public var device: DeviceID {
        switch self {
        case .obdPIDs(let vin), .obdDTC(let vin), .obdHello(let vin), .obdGPS(let vin): DeviceID(vin: vin)
        case .waterLevel(let sensor): DeviceID(sensor: sensor)
        }
    }

    public static func parse(_ topic: String) throws(Rejection) -> Topic {
        // Three slashes found in place: no array of levels per message (split allocated one,
        // and was 4 % of all ingest instructions by callgrind).
        let utf8 = topic.utf8
        let slash = UInt8(ascii: "/")
        guard let first = utf8.firstIndex(of: slash),
            let second = utf8[utf8.index(after: first)...].firstIndex(of: slash),
            let third = utf8[utf8.index(after: second)...].firstIndex(of: slash),
            !utf8[utf8.index(after: third)...].contains(slash), utf8[..<first].elementsEqual("v1".utf8)
        else {
            throw Rejection(.unknownTopic, "expected v1/{obd|water}/{id}/{leaf}")
        }
        let family = utf8[utf8.index(after: first)..<second]
        let leaf = utf8[utf8.index(after: third)...]
        let id = topic[topic.index(after: second)..<third]
        if family.elementsEqual("obd".utf8) {
            let kind: (VIN) -> Topic
            if leaf.elementsEqual("pids".utf8) {
                kind = Topic.obdPIDs
            } else if leaf.elementsEqual("dtc".utf8) {
                kind = Topic.obdDTC
            } else if leaf.elementsEqual("hello".utf8) {
                kind = Topic.obdHello
            } else if leaf.elementsEqual("gps".utf8) {
                kind = Topic.obdGPS
            } else {
                throw Rejection(.unknownTopic, "unknown obd leaf; expected pids, dtc, hello or gps")
            }
            guard let vin = VIN(id) else {
                throw Rejection(.badDeviceID, "VIN must be 17 of A-Z 0-9 without I, O, Q")
            }
            return kind(vin)
        }
        if family.elementsEqual("water".utf8) {
            guard leaf.elementsEqual("level".utf8) else {
                throw Rejection(.unknownTopic, "unknown water leaf; expected level")
            }
            guard let sensor = SensorID(id) else {
                throw Rejection(.badDeviceID, "sensor id must be 1 to 64 of A-Z a-z 0-9 _ . -")
            }
            return .waterLevel(sensor)
        }
        throw Rejection(.unknownTopic, "unknown family; expected obd or water")
    }
}
