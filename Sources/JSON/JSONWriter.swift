/// Writes JSON straight into bytes, without building a `JSONValue` tree first.
///
/// For the REST API's large and frequent responses (a day of series buckets, pages of
/// devices): one growing buffer, numbers formatted in place, no intermediate strings.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var pendingComma = false

    public init(capacity: Int = 1024) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        pendingComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        pendingComma = true
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        pendingComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        pendingComma = true
    }

    /// An object key; the next value call writes its value. Keys are literals in the code
    /// and need no escaping, so they are copied as they are.
    public mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        pendingComma = false
    }

    /// A key that is data (a reason, a device id): escaped like any string.
    public mutating func key(text name: String) {
        separate()
        appendString(name)
        bytes.append(UInt8(ascii: ":"))
        pendingComma = false
    }

    public mutating func value(_ number: Int64) {
        separate()
        appendInteger(number)
        pendingComma = true
    }

    /// Whole numbers print without a fraction; NaN and infinities, which JSON lacks, as null.
    public mutating func value(_ number: Double) {
        separate()
        if !number.isFinite {
            bytes.append(contentsOf: "null".utf8)
        } else if number == number.rounded(), abs(number) < 1e15 {
            appendInteger(Int64(number))
        } else {
            bytes.append(contentsOf: number.description.utf8)
        }
        pendingComma = true
    }

    public mutating func value(_ text: String?) {
        separate()
        if let text { appendString(text) } else { bytes.append(contentsOf: "null".utf8) }
        pendingComma = true
    }

    public mutating func value(_ flag: Bool) {
        separate()
        bytes.append(contentsOf: (flag ? "true" : "false").utf8)
        pendingComma = true
    }

    public mutating func field(_ name: StaticString, _ number: Int64) {
        key(name)
        value(number)
    }

    public mutating func field(_ name: StaticString, _ number: Double) {
        key(name)
        value(number)
    }

    public mutating func field(_ name: StaticString, _ text: String?) {
        key(name)
        value(text)
    }

    public mutating func field(_ name: StaticString, _ flag: Bool) {
        key(name)
        value(flag)
    }

    private mutating func separate() {
        if pendingComma { bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func appendInteger(_ number: Int64) {
        if number < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[23 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: buffer[(24 - count)...])
        }
    }

    private mutating func appendString(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        // Most strings (ids, names, keys) need no escaping: copy them in one go.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: text.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)],
                    hex[Int(byte & 0xF)],
                ])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
