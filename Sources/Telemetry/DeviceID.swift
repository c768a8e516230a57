/// The two families of device the gateway listens to.
public enum DeviceKind: Int, Sendable, Hashable, CaseIterable {
    case vehicle = 1
    case water = 2

    /// The name used in SQL views, logs and the API.
    public var name: String {
        switch self {
        case .vehicle: "vehicle"
        case .water: "water"
        }
    }

    public init?(name: String) {
        switch name {
        case "vehicle": self = .vehicle
        case "water": self = .water
        default: return nil
        }
    }
}

/// A vehicle identification number: 17 characters of A–Z and 0–9 without I, O and Q
/// (ISO 3779), which excludes the letters most easily read as digits.
public struct VIN: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    public init?(_ text: some StringProtocol) {
        guard text.utf8.count == 17, text.utf8.allSatisfy(VIN.isAllowed) else { return nil }
        value = String(text)
    }

    /// The same rules over bytes (a topic level), for the per-message path.
    init?(bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == 17, bytes.allSatisfy(VIN.isAllowed) else { return nil }
        value = String(decoding: bytes, as: UTF8.self)
    }

    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case UInt8(ascii: "I"), UInt8(ascii: "O"), UInt8(ascii: "Q"): return false
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return true
        default: return false
        }
    }

    public var description: String { value }
}

/// A water sensor's id: 1 to 64 of `A-Z a-z 0-9 _ . -`, starting with a letter or a digit and
/// never holding `..`, chosen by the city at install time.
///
/// The rules keep ids safe as MQTT topic levels, URL path segments, file names and log values:
/// no id can read as `.`, `..`, a hidden file or a command-line option.
public struct SensorID: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    public init?(_ text: some StringProtocol) {
        guard Self.isValid(text.utf8) else { return nil }
        value = String(text)
    }

    /// The same rules over bytes (a topic level), for the per-message path.
    init?(bytes: UnsafeBufferPointer<UInt8>) {
        guard Self.isValid(bytes) else { return nil }
        value = String(decoding: bytes, as: UTF8.self)
    }

    private static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        guard (1...64).contains(bytes.count), let first = bytes.first, first != UInt8(ascii: "."),
            first != UInt8(ascii: "-"), first != UInt8(ascii: "_")
        else { return false }
        var previous: UInt8 = 0
        for byte in bytes {
            guard isAllowed(byte), !(byte == UInt8(ascii: ".") && previous == byte) else { return false }
            previous = byte
        }
        return true
    }

    static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default: return false
        }
    }

    public var description: String { value }
}

/// A device as the store knows it: its kind and its validated id.
public struct DeviceID: Sendable, Hashable, CustomStringConvertible {
    public let kind: DeviceKind
    public let name: String

    public init(vin: VIN) {
        kind = .vehicle
        name = vin.value
    }

    public init(sensor: SensorID) {
        kind = .water
        name = sensor.value
    }

    public var description: String { name }
}
