/// Canonical JSON per RFC 8785 (JCS), restricted to integers: the bytes a signature covers.
///
/// Why JCS: a signer and a verifier on different machines must produce the same bytes from
/// the same document, and firmware teams can take an existing JCS implementation. Floats are
/// refused rather than canonicalised, because nothing signed here needs one and their
/// shortest round-trip form is where implementations disagree.
public enum CanonicalJSONError: Error, Equatable, Sendable, CustomStringConvertible {
    case nonInteger(path: String)
    case integerOutOfRange(path: String)

    public var description: String {
        switch self {
        case .nonInteger(let path): "\(path) is not an integer; signed documents carry integers only"
        case .integerOutOfRange(let path): "\(path) is outside ±(2^53-1), which JCS cannot carry exactly"
        }
    }
}

extension JSONValue {
    public func canonicalBytes() throws(CanonicalJSONError) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        try writeCanonical(to: &output, path: "$")
        return output
    }

    private func writeCanonical(to output: inout [UInt8], path: String) throws(CanonicalJSONError) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value):
            guard abs(value) <= 9_007_199_254_740_991 else { throw .integerOutOfRange(path: path) }
            output.append(contentsOf: String(value).utf8)
        case .double: throw .nonInteger(path: path)
        case .string(let value): Self.writeCanonicalString(value, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                try element.writeCanonical(to: &output, path: "\(path)[\(index)]")
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            // JCS orders members by the UTF-16 code units of their names.
            let sorted = object.members.sorted { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }
            for (index, member) in sorted.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.writeCanonicalString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                try member.value.writeCanonical(to: &output, path: "\(path).\(member.key)")
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static func writeCanonicalString(_ value: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): output.append(contentsOf: "\\\\".utf8)
            case 0x08: output.append(contentsOf: "\\b".utf8)
            case 0x09: output.append(contentsOf: "\\t".utf8)
            case 0x0A: output.append(contentsOf: "\\n".utf8)
            case 0x0C: output.append(contentsOf: "\\f".utf8)
            case 0x0D: output.append(contentsOf: "\\r".utf8)
            case 0..<0x20:
                let digits = Array("0123456789abcdef".utf8)
                output.append(contentsOf: "\\u00".utf8)
                output.append(digits[Int(byte >> 4)])
                output.append(digits[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
