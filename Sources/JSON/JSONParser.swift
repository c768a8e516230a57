#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a JSON text was refused, and at which byte.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case empty = "empty document"
        case unexpectedEnd = "unexpected end of input"
        case unexpectedByte = "unexpected byte"
        case invalidUTF8 = "invalid UTF-8"
        case invalidEscape = "invalid escape sequence"
        case controlCharacter = "unescaped control character in string"
        case invalidNumber = "invalid number"
        case tooDeep = "nesting too deep"
        case duplicateKey = "duplicate key"
        case trailingData = "data after the document"
    }

    public let reason: Reason
    public let offset: Int

    public var description: String { "\(reason.rawValue) at byte \(offset)" }
}

/// A strict RFC 8259 parser over raw bytes.
///
/// Device payloads arrive as bytes from the broker; parsing them directly avoids building
/// a `String` or `Data` first, and being strict (no comments, no trailing commas, UTF-8
/// checked, duplicate keys refused) means two readers never disagree about what a
/// payload said.
public struct JSONParser {
    public static let defaultMaxDepth = 32

    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONError)
        -> JSONValue
    {
        let result: Result<JSONValue, JSONError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONError) -> JSONValue in try parse(buffer: buffer, maxDepth: maxDepth) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer throws(JSONError) -> JSONValue in
            try parse(buffer: buffer, maxDepth: maxDepth)
        }
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    public static func parse(buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONError)
        -> JSONValue
    {
        var parser = Cursor(bytes: buffer, maxDepth: maxDepth)
        parser.skipWhitespace()
        guard parser.index < buffer.count else { throw JSONError(reason: .empty, offset: 0) }
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index != buffer.count { throw JSONError(reason: .trailingData, offset: parser.index) }
        return value
    }

    /// One JSON number starting at `index`, read exactly as `parse` reads it (the same
    /// integer/double split and the same conversion); `index` moves past it. Nil if no valid
    /// number starts there. For decoders that walk a known shape without building a tree.
    public static func number(in buffer: UnsafeBufferPointer<UInt8>, at index: inout Int) -> JSONValue? {
        guard index < buffer.count else { return nil }
        var cursor = Cursor(bytes: buffer, maxDepth: 1)
        cursor.index = index
        guard let value = try? cursor.parseNumber() else { return nil }
        index = cursor.index
        return value
    }

    struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        func fail(_ reason: JSONError.Reason) -> JSONError { JSONError(reason: reason, offset: index) }

        mutating func peek() throws(JSONError) -> UInt8 {
            guard index < bytes.count else { throw fail(.unexpectedEnd) }
            return bytes[index]
        }

        mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
            let count = literal.utf8CodeUnitCount
            let start = literal.utf8Start
            for offset in 0..<count {
                guard index < bytes.count else { throw fail(.unexpectedEnd) }
                guard bytes[index] == start[offset] else { throw fail(.unexpectedByte) }
                index += 1
            }
        }

        mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
            switch try peek() {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try parseNumber()
            default:
                throw fail(.unexpectedByte)
            }
        }

        mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
            guard depth <= maxDepth else { throw fail(.tooDeep) }
            index += 1
            var members: [(key: String, value: JSONValue)] = []
            skipWhitespace()
            if try peek() == UInt8(ascii: "}") {
                index += 1
                return .object(JSONObject(members))
            }
            while true {
                skipWhitespace()
                guard try peek() == UInt8(ascii: "\"") else { throw fail(.unexpectedByte) }
                let keyOffset = index
                let key = try parseString()
                for member in members where member.key == key {
                    throw JSONError(reason: .duplicateKey, offset: keyOffset)
                }
                skipWhitespace()
                guard try peek() == UInt8(ascii: ":") else { throw fail(.unexpectedByte) }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth)
                members.append((key, value))
                skipWhitespace()
                switch try peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return .object(JSONObject(members))
                default: throw fail(.unexpectedByte)
                }
            }
        }

        mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
            guard depth <= maxDepth else { throw fail(.tooDeep) }
            index += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if try peek() == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth))
                skipWhitespace()
                switch try peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return .array(elements)
                default: throw fail(.unexpectedByte)
                }
            }
        }

        mutating func parseString() throws(JSONError) -> String {
            index += 1
            let start = index
            // Fast path: no escapes, ASCII only.
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    return String(decoding: slice, as: UTF8.self)
                }
                if byte == UInt8(ascii: "\\") || byte >= 0x80 { break }
                if byte < 0x20 { throw fail(.controlCharacter) }
                index += 1
            }
            var scalars: [UInt8] = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            while true {
                guard index < bytes.count else { throw fail(.unexpectedEnd) }
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return String(decoding: scalars, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    index += 1
                    try parseEscape(into: &scalars)
                case 0..<0x20:
                    throw fail(.controlCharacter)
                case 0x80...:
                    try copyUTF8Sequence(into: &scalars)
                default:
                    scalars.append(byte)
                    index += 1
                }
            }
        }

        mutating func copyUTF8Sequence(into output: inout [UInt8]) throws(JSONError) {
            let lead = bytes[index]
            let length: Int
            var lowerBound: UInt8 = 0x80
            var upperBound: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                lowerBound = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                upperBound = 0x9F
            case 0xF0:
                length = 4
                lowerBound = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                upperBound = 0x8F
            default: throw fail(.invalidUTF8)
            }
            guard index + length <= bytes.count else { throw fail(.invalidUTF8) }
            let second = bytes[index + 1]
            guard second >= lowerBound && second <= upperBound else { throw fail(.invalidUTF8) }
            if length > 2 {
                for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 {
                    throw fail(.invalidUTF8)
                }
            }
            for offset in 0..<length { output.append(bytes[index + offset]) }
            index += length
        }

        mutating func parseHex4() throws(JSONError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard index < bytes.count else { throw fail(.unexpectedEnd) }
                guard let digit = hexDigitValue(bytes[index]) else { throw fail(.invalidEscape) }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        mutating func parseEscape(into output: inout [UInt8]) throws(JSONError) {
            guard index < bytes.count else { throw fail(.unexpectedEnd) }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""): output.append(0x22)
            case UInt8(ascii: "\\"): output.append(0x5C)
            case UInt8(ascii: "/"): output.append(0x2F)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    else { throw fail(.invalidEscape) }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail(.invalidEscape) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail(.invalidEscape)
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw fail(.invalidEscape) }
                output.append(contentsOf: UTF8.encode(unicode)!)
            default:
                index -= 1
                throw fail(.invalidEscape)
            }
        }

        mutating func parseNumber() throws(JSONError) -> JSONValue {
            let start = index
            var negative = false
            if bytes[index] == UInt8(ascii: "-") {
                negative = true
                index += 1
            }
            guard index < bytes.count else { throw fail(.unexpectedEnd) }
            var magnitude: UInt64 = 0
            var overflow = false
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else if isDigit(bytes[index]) {
                while index < bytes.count, isDigit(bytes[index]) {
                    let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[index] - 0x30))
                    overflow = overflow || o1 || o2
                    magnitude = sum
                    index += 1
                }
            } else {
                throw fail(.invalidNumber)
            }
            var isInteger = true
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail(.invalidNumber) }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                    index += 1
                }
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail(.invalidNumber) }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if isInteger && !overflow {
                if negative {
                    if magnitude <= UInt64(Int64.max) + 1 {
                        return .int(magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude))
                    }
                } else if magnitude <= UInt64(Int64.max) {
                    return .int(Int64(magnitude))
                }
            }
            let value = Self.strtod(UnsafeBufferPointer(rebasing: bytes[start..<index]))
            guard value.isFinite else { throw JSONError(reason: .invalidNumber, offset: start) }
            return .double(value)
        }

        static func strtod(_ lexeme: UnsafeBufferPointer<UInt8>) -> Double {
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: lexeme.count + 1) { buffer in
                for offset in 0..<lexeme.count { buffer[offset] = CChar(bitPattern: lexeme[offset]) }
                buffer[lexeme.count] = 0
                return Glibc.strtod(buffer.baseAddress!, nil)
            }
        }
    }
}

@inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

/// The value of one hexadecimal digit, either case.
@inline(__always) public func hexDigitValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 0x30...0x39: return byte - 0x30
    case 0x41...0x46: return byte - 0x41 + 10
    case 0x61...0x66: return byte - 0x61 + 10
    default: return nil
    }
}
