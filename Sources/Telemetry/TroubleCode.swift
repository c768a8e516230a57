/// A diagnostic trouble code such as `P0301`, decoded from the two bytes a mode 03
/// response carries per code (SAE J2012 / J1979).
///
/// Byte 1 bits 7–6 pick the system (P powertrain, C chassis, B body, U network),
/// bits 5–4 the first digit (0–3), bits 3–0 the second; byte 2 gives the last two as hex.
public struct TroubleCode: Sendable, Hashable, CustomStringConvertible {
    public let high: UInt8
    public let low: UInt8

    public init(high: UInt8, low: UInt8) {
        self.high = high
        self.low = low
    }

    public var description: String {
        let letters: [Character] = ["P", "C", "B", "U"]
        let digits = Array("0123456789ABCDEF")
        return String([
            letters[Int(high >> 6)], digits[Int(high >> 4 & 0x3)], digits[Int(high & 0xF)],
            digits[Int(low >> 4)], digits[Int(low & 0xF)],
        ])
    }

    /// Decodes a mode 03 byte string. `0000` pairs are padding ("no code") and are skipped.
    public static func decode(hex: String) -> [TroubleCode]? {
        guard hex.utf8.count % 4 == 0, let bytes = decodeHex(hex) else { return nil }
        var codes: [TroubleCode] = []
        var index = 0
        while index < bytes.count {
            let code = TroubleCode(high: bytes[index], low: bytes[index + 1])
            if code.high != 0 || code.low != 0 { codes.append(code) }
            index += 2
        }
        return codes
    }
}
