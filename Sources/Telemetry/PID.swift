import JSON

/// An OBD-II service 01 parameter id (SAE J1979 / ISO 15031-5).
public struct PID: Sendable, Hashable, CustomStringConvertible {
    public let code: UInt8

    public init(_ code: UInt8) { self.code = code }

    /// Parses the two-hex-digit key used in payloads ("0C"); either case is accepted.
    public init?(hex: some StringProtocol) {
        let bytes = Array(hex.utf8)
        guard bytes.count == 2, let high = hexDigitValue(bytes[0]), let low = hexDigitValue(bytes[1]) else {
            return nil
        }
        code = high << 4 | low
    }

    public var description: String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: [digits[Int(code >> 4)], digits[Int(code & 0xF)]], as: UTF8.self)
    }
}

/// How one PID's data bytes A, B, C, D turn into signal values.
///
/// Formulas are those of SAE J1979 Appendix B; each PID has a fixed number of data bytes,
/// and any other count is refused rather than guessed at. Most PIDs are "the big-endian
/// unsigned integer of the data bytes, times a factor, plus an offset"; PID 01 packs two
/// signals into byte A.
public struct PIDDefinition: Sendable {
    public enum Formula: Sendable {
        /// value = uint(bytes) * factor + offset
        case linear(factor: Double, offset: Double)
        /// PID 01: A7 is the MIL, A6..A0 the number of confirmed trouble codes.
        case monitorStatus
    }

    public let pid: PID
    public let byteCount: Int
    /// The one signal of a linear PID (`milOn` for the monitor status, which adds `dtcCount`).
    /// Stored alone, not as an array, so that taking a definition from `table` for every PID
    /// of every message retains nothing.
    private let signal: Signal
    public let formula: Formula

    /// What this PID yields, in order.
    public var signals: [Signal] {
        switch formula {
        case .monitorStatus: [.milOn, .dtcCount]
        case .linear: [signal]
        }
    }

    init(_ code: UInt8, bytes: Int, _ signal: Signal, factor: Double = 1, offset: Double = 0) {
        pid = PID(code)
        byteCount = bytes
        self.signal = signal
        formula = .linear(factor: factor, offset: offset)
    }

    init(monitorStatus code: UInt8) {
        pid = PID(code)
        byteCount = 4
        signal = .milOn
        formula = .monitorStatus
    }

    /// Appends this PID's readings, given its `byteCount` data bytes as one big-endian
    /// integer (`raw`) and byte A on its own.
    public func decode(raw: UInt64, firstByte a: UInt8, into readings: inout [Reading]) {
        switch formula {
        case .monitorStatus:
            readings.append(Reading(signal: .milOn, value: Double(a >> 7)))
            readings.append(Reading(signal: .dtcCount, value: Double(a & 0x7F)))
        case .linear(let factor, let offset):
            readings.append(Reading(signal: signal, value: Double(raw) * factor + offset))
        }
    }

    /// The PIDs this gateway decodes, indexed by PID code: an array, not a dictionary, so the
    /// lookup done for every PID of every message is an index instead of a hash.
    public static let table: [PIDDefinition?] = {
        var byCode = [PIDDefinition?](repeating: nil, count: 256)
        for (code, definition) in dictionary { byCode[Int(code)] = definition }
        return byCode
    }()

    /// The same, keyed by PID code (for listing).
    public static let dictionary: [UInt8: PIDDefinition] = {
        let percent = 100.0 / 255.0
        let definitions: [PIDDefinition] = [
            PIDDefinition(monitorStatus: 0x01),
            PIDDefinition(0x04, bytes: 1, .engineLoad, factor: percent),
            PIDDefinition(0x05, bytes: 1, .coolantTemp, offset: -40),
            PIDDefinition(0x0B, bytes: 1, .intakeMAP),
            PIDDefinition(0x0C, bytes: 2, .engineRPM, factor: 0.25),
            PIDDefinition(0x0D, bytes: 1, .speed),
            PIDDefinition(0x0F, bytes: 1, .intakeAirTemp, offset: -40),
            PIDDefinition(0x10, bytes: 2, .maf, factor: 0.01),
            PIDDefinition(0x11, bytes: 1, .throttle, factor: percent),
            PIDDefinition(0x1F, bytes: 2, .runTime),
            PIDDefinition(0x2F, bytes: 1, .fuelLevel, factor: percent),
            PIDDefinition(0x42, bytes: 2, .moduleVoltage, factor: 0.001),
            PIDDefinition(0x46, bytes: 1, .ambientAirTemp, offset: -40),
            PIDDefinition(0x5B, bytes: 1, .hybridBattery, factor: percent),
            PIDDefinition(0x5C, bytes: 1, .oilTemp, offset: -40),
            PIDDefinition(0x5E, bytes: 2, .fuelRate, factor: 0.05),
            // A6: odometer in hectometres.
            PIDDefinition(0xA6, bytes: 4, .odometer, factor: 0.1),
        ]
        return Dictionary(uniqueKeysWithValues: definitions.map { ($0.pid.code, $0) })
    }()
}

/// Decodes a string of hex digit pairs into bytes; nil if it is not whole bytes of hex.
func decodeHex(_ text: String) -> [UInt8]? {
    let utf8 = text.utf8
    guard utf8.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(utf8.count / 2)
    var iterator = utf8.makeIterator()
    while let high = iterator.next(), let low = iterator.next() {
        guard let h = hexDigitValue(high), let l = hexDigitValue(low) else { return nil }
        bytes.append(h << 4 | l)
    }
    return bytes
}
