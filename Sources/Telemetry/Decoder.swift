import JSON

/// Turns a topic and payload from the broker into a `Message` or a `Rejection`.
///
/// Pure and synchronous: it runs on the ingest thread for every message, so it keeps no
/// state and touches no I/O; the same inputs always give the same answer, which is what
/// lets the firmware test vectors pin its behaviour down.
public struct Decoder: Sendable {
    public struct Configuration: Sendable {
        /// Payloads larger than this are refused before parsing.
        public var maxPayloadBytes: Int = 16 * 1024
        /// A `ts` later than the gateway's clock by more than this is refused (device clock wrong).
        public var maxFutureSkewMs: Int64 = 24 * 3600 * 1000
        public init() {}
    }

    /// Earliest accepted `ts`: 2000-01-01T00:00:00Z. Earlier means an unset device clock.
    public static let minimumTimestamp: Int64 = 946_684_800_000
    public static let waterLevelRange: ClosedRange<Double> = -100...10_000
    public static let batteryRange: ClosedRange<Double> = 0...60
    public static let rainRange: ClosedRange<Double> = 0...1_000
    public static let latitudeRange: ClosedRange<Double> = -90...90
    public static let longitudeRange: ClosedRange<Double> = -180...180
    public static let gpsSpeedRange: ClosedRange<Double> = 0...400
    public static let headingRange: ClosedRange<Double> = 0...360

    public var configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Decodes one message. `nowMs` is the gateway's clock, used only for the future-skew check.
    public func decode(topic: String, payload: UnsafeBufferPointer<UInt8>, nowMs: Int64) -> Result<Message, Rejection> {
        do throws(Rejection) {
            return .success(try decodeThrowing(topic: topic, payload: payload, nowMs: nowMs))
        } catch {
            return .failure(error)
        }
    }

    public func decode(topic: String, payload: [UInt8], nowMs: Int64) -> Result<Message, Rejection> {
        payload.withUnsafeBufferPointer { decode(topic: topic, payload: $0, nowMs: nowMs) }
    }

    func decodeThrowing(topic: String, payload: UnsafeBufferPointer<UInt8>, nowMs: Int64) throws(Rejection) -> Message {
        let parsedTopic = try Topic.parse(topic)
        guard payload.count <= configuration.maxPayloadBytes else {
            throw Rejection(.payloadTooLarge, "\(payload.count) bytes, limit \(configuration.maxPayloadBytes)")
        }
        if let message = decodeFast(parsedTopic, payload: payload, nowMs: nowMs) { return message }
        return try decodeTree(parsedTopic, payload: payload, nowMs: nowMs)
    }

    /// The general path: a JSON tree, every check, a rejection that says what is wrong.
    func decodeTree(_ parsedTopic: Topic, payload: UnsafeBufferPointer<UInt8>, nowMs: Int64) throws(Rejection)
        -> Message
    {
        let document: JSONValue
        do {
            document = try JSONParser.parse(buffer: payload, maxDepth: 8)
        } catch {
            throw Rejection(error.reason == .invalidUTF8 ? .notUTF8 : .notJSON, error.description)
        }
        guard let object = document.object else {
            throw Rejection(.notObject, "payload must be a JSON object, got \(document.typeName)")
        }
        let device = parsedTopic.device
        switch parsedTopic {
        case .obdHello:
            return .hello(
                device: device,
                firmware: try text(object, "fw", maxLength: 32, required: true)!,
                hardware: try text(object, "hw", maxLength: 32, required: true)!,
                model: try text(object, "model", maxLength: 64, required: false),
                nextSeq: try optionalSeq(object))
        case .obdPIDs:
            let (ts, seq) = try envelope(object, nowMs: nowMs)
            guard let value = object["pids"] else { throw Rejection(.missingField, "pids is required") }
            guard case .object(let pids) = value else {
                throw Rejection(.wrongType, "pids must be an object, got \(value.typeName)")
            }
            guard !pids.members.isEmpty else { throw Rejection(.emptyPIDs, "pids has no entries") }
            var readings: [Reading] = []
            readings.reserveCapacity(pids.members.count + 1)
            var rejections: [Rejection] = []
            for (key, value) in pids.members {
                do throws(Rejection) {
                    try decodePID(key: key, value: value, into: &readings)
                } catch {
                    rejections.append(error)
                }
            }
            return .readings(device: device, ts: ts, seq: seq, readings: readings, entryRejections: rejections)
        case .obdDTC:
            let (ts, seq) = try envelope(object, nowMs: nowMs)
            guard let value = object["dtc"] else { throw Rejection(.missingField, "dtc is required") }
            guard case .string(let hex) = value else {
                throw Rejection(.wrongType, "dtc must be a hex string, got \(value.typeName)")
            }
            guard hex.utf8.count <= 512, let codes = TroubleCode.decode(hex: hex) else {
                throw Rejection(.badDTC, "dtc must be hex, 4 digits per code, at most 128 codes")
            }
            return .troubleCodes(device: device, ts: ts, seq: seq, codes: codes)
        case .obdGPS:
            let (ts, seq) = try envelope(object, nowMs: nowMs)
            let lat = try number(object, "lat", Self.latitudeRange, required: true)!
            let lon = try number(object, "lon", Self.longitudeRange, required: true)!
            // A receiver without a fix reports 0, 0 (in the Gulf of Guinea): never a city street.
            guard lat != 0 || lon != 0 else {
                throw Rejection(.outOfRange, "lat 0, lon 0 is what a receiver without a fix reports; send no position")
            }
            var readings = [Reading(signal: .latitude, value: lat), Reading(signal: .longitude, value: lon)]
            if let speed = try number(object, "speed_kmh", Self.gpsSpeedRange, required: false) {
                readings.append(Reading(signal: .gpsSpeed, value: speed))
            }
            if let heading = try number(object, "heading_deg", Self.headingRange, required: false) {
                readings.append(Reading(signal: .heading, value: heading.truncatingRemainder(dividingBy: 360)))
            }
            return .readings(device: device, ts: ts, seq: seq, readings: readings, entryRejections: [])
        case .waterLevel:
            let (ts, seq) = try envelope(object, nowMs: nowMs)
            var readings: [Reading] = []
            readings.reserveCapacity(3)
            readings.append(
                Reading(
                    signal: .waterLevel, value: try number(object, "level_cm", Self.waterLevelRange, required: true)!))
            if let battery = try number(object, "battery_v", Self.batteryRange, required: false) {
                readings.append(Reading(signal: .batteryVoltage, value: battery))
            }
            if let rain = try number(object, "rain_mm_h", Self.rainRange, required: false) {
                readings.append(Reading(signal: .rainRate, value: rain))
            }
            return .readings(device: device, ts: ts, seq: seq, readings: readings, entryRejections: [])
        }
    }

    func envelope(_ object: JSONObject, nowMs: Int64) throws(Rejection) -> (Int64, UInt32) {
        guard let tsValue = object["ts"] else { throw Rejection(.missingField, "ts is required (unix ms)") }
        guard case .int(let ts) = tsValue else {
            throw Rejection(.badTimestamp, "ts must be an integer of unix milliseconds, got \(tsValue.typeName)")
        }
        guard ts >= Self.minimumTimestamp else {
            throw Rejection(.badTimestamp, "ts \(ts) is before 2000-01-01; is the device clock set?")
        }
        guard ts <= nowMs &+ configuration.maxFutureSkewMs else {
            throw Rejection(.badTimestamp, "ts \(ts) is more than \(configuration.maxFutureSkewMs) ms in the future")
        }
        guard let seqValue = object["seq"] else { throw Rejection(.missingField, "seq is required (uint32)") }
        guard case .int(let seq) = seqValue, seq >= 0, seq <= Int64(UInt32.max) else {
            throw Rejection(
                .badSequence, "seq must be an integer 0...4294967295, got \(seqValue.serialized().prefix(32))")
        }
        return (ts, UInt32(seq))
    }

    func optionalSeq(_ object: JSONObject) throws(Rejection) -> UInt32? {
        guard let value = object["seq"] else { return nil }
        guard case .int(let seq) = value, seq >= 0, seq <= Int64(UInt32.max) else {
            throw Rejection(.badSequence, "seq must be an integer 0...4294967295, got \(value.serialized().prefix(32))")
        }
        return UInt32(seq)
    }

    func number(_ object: JSONObject, _ key: String, _ range: ClosedRange<Double>, required: Bool) throws(Rejection)
        -> Double?
    {
        guard let value = object[key] else {
            if required { throw Rejection(.missingField, "\(key) is required") }
            return nil
        }
        guard let number = value.number else {
            throw Rejection(.wrongType, "\(key) must be a number, got \(value.typeName)")
        }
        guard range.contains(number) else {
            throw Rejection(.outOfRange, "\(key) \(number) outside \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    func text(_ object: JSONObject, _ key: String, maxLength: Int, required: Bool) throws(Rejection) -> String? {
        guard let value = object[key] else {
            if required { throw Rejection(.missingField, "\(key) is required") }
            return nil
        }
        guard case .string(let text) = value else {
            throw Rejection(.wrongType, "\(key) must be a string, got \(value.typeName)")
        }
        guard !text.isEmpty, text.utf8.count <= maxLength,
            text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
        else {
            throw Rejection(.badText, "\(key) must be 1 to \(maxLength) bytes of printable text")
        }
        return text
    }

    func decodePID(key: String, value: JSONValue, into readings: inout [Reading]) throws(Rejection) {
        guard let pid = PID(hex: key) else {
            throw Rejection(.badPIDKey, "PID key \(key.prefix(8).debugDescription) is not two hex digits")
        }
        guard PIDDefinition.table[Int(pid.code)] != nil else {
            throw Rejection(.unknownPID, "PID \(pid) is not decoded by this gateway")
        }
        guard case .string(let hex) = value else {
            throw Rejection(.wrongType, "PID \(pid) value must be a hex string, got \(value.typeName)")
        }
        try decodePIDValue(pid, digits: hex.utf8, into: &readings)
    }

    /// A PID's value from its hex digits (the general path's string, or the fast path's bytes):
    /// decoded straight from the digits, no byte array per PID on the hot path.
    func decodePIDValue(_ pid: PID, digits: some Collection<UInt8>, into readings: inout [Reading]) throws(Rejection) {
        guard let definition = PIDDefinition.table[Int(pid.code)] else {
            throw Rejection(.unknownPID, "PID \(pid) is not decoded by this gateway")
        }
        guard digits.count % 2 == 0 else { throw Rejection(.badHex, "PID \(pid) value is not whole bytes of hex") }
        var raw: UInt64 = 0
        var firstByte: UInt8 = 0
        var count = 0
        var iterator = digits.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = hexDigitValue(high), let l = hexDigitValue(low) else {
                throw Rejection(.badHex, "PID \(pid) value is not whole bytes of hex")
            }
            let byte = h << 4 | l
            if count == 0 { firstByte = byte }
            raw = raw << 8 | UInt64(byte)
            count += 1
        }
        guard count == definition.byteCount else {
            throw Rejection(.badPIDLength, "PID \(pid) takes \(definition.byteCount) data bytes, got \(count)")
        }
        definition.decode(raw: raw, firstByte: firstByte, into: &readings)
    }
}
