import JSON

/// The two shapes that are nearly all of a gateway's traffic — OBD PIDs and water levels —
/// read straight from the bytes, without a JSON tree (building the tree was a quarter of the
/// instructions spent per reading).
///
/// Only a payload that is plainly valid is taken here: the documented members once each, keys
/// and hex strings of printable ASCII without escapes, numbers read by the JSON parser's own
/// number reader, every check of the general path passed. Anything else — an unknown or
/// repeated member, an escape, any error at all — returns nil and goes the general way, which
/// says what is wrong. So this path never decides a rejection, and what it accepts it decodes
/// to the same `Message` (a differential test holds it to that).
extension Decoder {
    func decodeFast(_ topic: Topic, payload: UnsafeBufferPointer<UInt8>, nowMs: Int64) -> Message? {
        switch topic {
        case .obdPIDs: return fastPIDs(device: topic.device, payload, nowMs: nowMs)
        case .waterLevel: return fastWater(device: topic.device, payload, nowMs: nowMs)
        default: return nil
        }
    }

    private func fastPIDs(device: DeviceID, _ payload: UnsafeBufferPointer<UInt8>, nowMs: Int64) -> Message? {
        var scanner = FlatScanner(bytes: payload)
        var ts: Int64?
        var seq: Int64?
        var readings: [Reading] = []
        var sawPIDs = false
        guard scanner.open() else { return nil }
        repeat {
            guard let key = scanner.key() else { return nil }
            switch key {
            case .ts, .seq:
                guard scanner.envelope(key, ts: &ts, seq: &seq) else { return nil }
            case .pids:
                guard !sawPIDs, scanner.open() else { return nil }
                sawPIDs = true
                readings.reserveCapacity(24)
                var seen: [UInt16] = []
                seen.reserveCapacity(24)
                repeat {
                    guard let name = scanner.string(), name.count == 2 else { return nil }
                    let exact = UInt16(name[name.startIndex]) << 8 | UInt16(name[name.startIndex + 1])
                    // The parser refuses a key given twice (byte for byte): leave that to it.
                    guard !seen.contains(exact) else { return nil }
                    seen.append(exact)
                    guard scanner.colon(), let hex = scanner.string(),
                        let high = hexDigitValue(name[name.startIndex]),
                        let low = hexDigitValue(name[name.startIndex + 1])
                    else { return nil }
                    guard
                        (try? decodePIDValue(PID(high << 4 | low), digits: hex, into: &readings)) != nil
                    else { return nil }
                } while scanner.next()
            default:
                return nil
            }
        } while scanner.next()
        guard scanner.atEnd(objects: 2), sawPIDs, !readings.isEmpty, let ts, let seq,
            envelopeAccepts(ts: ts, seq: seq, nowMs: nowMs)
        else { return nil }
        return .readings(device: device, ts: ts, seq: UInt32(seq), readings: readings, entryRejections: [])
    }

    private func fastWater(device: DeviceID, _ payload: UnsafeBufferPointer<UInt8>, nowMs: Int64) -> Message? {
        var scanner = FlatScanner(bytes: payload)
        var ts: Int64?
        var seq: Int64?
        var level: Double?
        var battery: Double?
        var rain: Double?
        guard scanner.open() else { return nil }
        repeat {
            guard let key = scanner.key() else { return nil }
            switch key {
            case .ts, .seq:
                guard scanner.envelope(key, ts: &ts, seq: &seq) else { return nil }
            case .levelCm:
                guard level == nil, let value = scanner.number()?.number, Self.waterLevelRange.contains(value) else {
                    return nil
                }
                level = value
            case .batteryV:
                guard battery == nil, let value = scanner.number()?.number, Self.batteryRange.contains(value) else {
                    return nil
                }
                battery = value
            case .rainMmH:
                guard rain == nil, let value = scanner.number()?.number, Self.rainRange.contains(value) else {
                    return nil
                }
                rain = value
            default:
                return nil
            }
        } while scanner.next()
        guard scanner.atEnd(objects: 1), let level, let ts, let seq, envelopeAccepts(ts: ts, seq: seq, nowMs: nowMs)
        else {
            return nil
        }
        var readings: [Reading] = []
        readings.reserveCapacity(3)
        readings.append(Reading(signal: .waterLevel, value: level))
        if let battery { readings.append(Reading(signal: .batteryVoltage, value: battery)) }
        if let rain { readings.append(Reading(signal: .rainRate, value: rain)) }
        return .readings(device: device, ts: ts, seq: UInt32(seq), readings: readings, entryRejections: [])
    }

    /// The envelope checks of the general path, as a yes or no.
    private func envelopeAccepts(ts: Int64, seq: Int64, nowMs: Int64) -> Bool {
        ts >= Self.minimumTimestamp && ts <= nowMs &+ configuration.maxFutureSkewMs && seq >= 0
            && seq <= Int64(UInt32.max)
    }
}

/// Walks one JSON object of flat members over raw bytes. Every method returns nil or false
/// at the first thing outside the plain shape, and the caller gives up.
struct FlatScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    /// The members the fast shapes have.
    enum Member {
        case ts, seq, pids, levelCm, batteryV, rainMmH
    }

    static func member(_ name: Slice<UnsafeBufferPointer<UInt8>>) -> Member? {
        func matches(_ expected: StaticString) -> Bool {
            expected.withUTF8Buffer { name.elementsEqual($0) }
        }
        switch name.count {
        case 2: return matches("ts") ? .ts : nil
        case 3: return matches("seq") ? .seq : nil
        case 4: return matches("pids") ? .pids : nil
        case 8: return matches("level_cm") ? .levelCm : nil
        case 9: return matches("battery_v") ? .batteryV : matches("rain_mm_h") ? .rainMmH : nil
        default: return nil
        }
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// `{` with whitespace around; false also for `{}` (no members: the general path's case).
    mutating func open() -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return false }
        index += 1
        skipWhitespace()
        return index < bytes.count && bytes[index] == UInt8(ascii: "\"")
    }

    /// A string of printable ASCII without escapes; the slice between the quotes.
    mutating func string() -> Slice<UnsafeBufferPointer<UInt8>>? {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return bytes[start..<index - 1]
            }
            guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        return nil
    }

    /// A member name of the fast shapes and its colon (nil for any other name).
    mutating func key() -> Member? {
        guard let name = string(), let member = Self.member(name), colon() else { return nil }
        return member
    }

    mutating func colon() -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
        index += 1
        return true
    }

    /// `ts` or `seq`: an integer, once.
    mutating func envelope(_ member: Member, ts: inout Int64?, seq: inout Int64?) -> Bool {
        guard case .int(let value)? = number() else { return false }
        switch member {
        case .ts where ts == nil: ts = value
        case .seq where seq == nil: seq = value
        default: return false
        }
        return true
    }

    mutating func number() -> JSONValue? {
        skipWhitespace()
        return JSONParser.number(in: bytes, at: &index)
    }

    /// After a member: true at `,` (another follows), false at `}` (the object ends) — and
    /// false for anything else, which `atEnd` then refuses.
    mutating func next() -> Bool {
        skipWhitespace()
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: ","):
            index += 1
            return true
        case UInt8(ascii: "}"):
            index += 1
            closed += 1
            return false
        default:
            return false
        }
    }

    /// Objects closed so far.
    var closed = 0

    /// All `objects` closed, the last one at the end, nothing but whitespace after it.
    mutating func atEnd(objects: Int) -> Bool {
        let last = index
        skipWhitespace()
        return index == bytes.count && closed == objects && last > 0 && bytes[last - 1] == UInt8(ascii: "}")
    }
}
