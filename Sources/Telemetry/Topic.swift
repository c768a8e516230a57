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
        var topic = topic
        // A topic from libmosquitto is a native string already: this copies nothing.
        topic.makeContiguousUTF8()
        let parsed = topic.utf8.withContiguousStorageIfAvailable { parse(bytes: $0) }
        switch parsed {
        case .success(let topic)?: return topic
        case .failure(let rejection)?: throw rejection
        case nil: throw Rejection(.unknownTopic, "expected v1/{obd|water}/{id}/{leaf}")
        }
    }

    /// The levels are found and compared in the topic's own bytes. Working on `String.UTF8View`
    /// slices cost 6 500 instructions a message under callgrind (half a kilobyte per reading):
    /// generic `elementsEqual`, index arithmetic, and `StringProtocol.contains` for a sensor id.
    private static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Result<Topic, Rejection> {
        let slash = UInt8(ascii: "/")
        var slashes: (Int, Int, Int) = (0, 0, 0)
        var found = 0
        for index in bytes.indices where bytes[index] == slash {
            switch found {
            case 0: slashes.0 = index
            case 1: slashes.1 = index
            case 2: slashes.2 = index
            default: return .failure(Rejection(.unknownTopic, "expected v1/{obd|water}/{id}/{leaf}"))
            }
            found += 1
        }
        let (first, second, third) = slashes
        guard found == 3, matches(bytes, 0..<first, "v1") else {
            return .failure(Rejection(.unknownTopic, "expected v1/{obd|water}/{id}/{leaf}"))
        }
        let family = first + 1..<second
        let leaf = third + 1..<bytes.count
        let id = UnsafeBufferPointer(rebasing: bytes[second + 1..<third])
        if matches(bytes, family, "obd") {
            let kind: (VIN) -> Topic
            if matches(bytes, leaf, "pids") {
                kind = Topic.obdPIDs
            } else if matches(bytes, leaf, "dtc") {
                kind = Topic.obdDTC
            } else if matches(bytes, leaf, "hello") {
                kind = Topic.obdHello
            } else if matches(bytes, leaf, "gps") {
                kind = Topic.obdGPS
            } else {
                return .failure(Rejection(.unknownTopic, "unknown obd leaf; expected pids, dtc, hello or gps"))
            }
            guard let vin = VIN(bytes: id) else {
                return .failure(Rejection(.badDeviceID, "VIN must be 17 of A-Z 0-9 without I, O, Q"))
            }
            return .success(kind(vin))
        }
        if matches(bytes, family, "water") {
            guard matches(bytes, leaf, "level") else {
                return .failure(Rejection(.unknownTopic, "unknown water leaf; expected level"))
            }
            guard let sensor = SensorID(bytes: id) else {
                return .failure(Rejection(.badDeviceID, "sensor id must be 1 to 64 of A-Z a-z 0-9 _ . -"))
            }
            return .success(.waterLevel(sensor))
        }
        return .failure(Rejection(.unknownTopic, "unknown family; expected obd or water"))
    }

    private static func matches(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ word: StaticString) -> Bool
    {
        guard range.count == word.utf8CodeUnitCount else { return false }
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for (offset, byte) in expected.enumerated() where bytes[range.lowerBound + offset] != byte { return false }
        return true
    }
}
