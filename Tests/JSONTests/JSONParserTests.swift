import JSON
import TestSupport
import Testing

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(
            #"{"a": [1, -2, 3.5, 1e2, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}, "e": -0}"#)
        #expect(
            value["a"] == .array([.int(1), .int(-2), .double(3.5), .double(100), .bool(true), .bool(false), .null]))
        #expect(value["b"]?["c"] == .string("d\né😀"))
        #expect(value["e"] == .int(0))
    }

    @Test func keepsIntegersApartFromOtherNumbers() throws {
        #expect(try JSONParser.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSONParser.parse("-9223372036854775808") == .int(Int64.min))
        #expect(try JSONParser.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try JSONParser.parse("1.0") == .double(1))
    }

    @Test(arguments: [
        ("", JSONError.Reason.empty), ("{", .unexpectedEnd), ("{\"a\":1,}", .unexpectedByte), ("[1,]", .unexpectedByte),
        ("01", .trailingData), ("1.", .invalidNumber), ("-", .unexpectedEnd), ("+1", .unexpectedByte),
        (".5", .unexpectedByte), ("1e", .invalidNumber), ("\"a", .unexpectedEnd), ("\"\\x\"", .invalidEscape),
        ("\"\\ud800\"", .invalidEscape), ("\"\\udc00\"", .invalidEscape), ("\"\u{01}\"", .controlCharacter),
        ("{\"a\":1,\"a\":2}", .duplicateKey), ("tru", .unexpectedEnd), ("nul", .unexpectedEnd),
        ("NaN", .unexpectedByte),
        ("1e999", .invalidNumber), ("{} {}", .trailingData), ("// c\n{}", .unexpectedByte), ("'a'", .unexpectedByte),
    ])
    func refusesMalformedText(text: String, reason: JSONError.Reason) {
        #expect(throws: JSONError.self) { try JSONParser.parse(text) }
        do {
            _ = try JSONParser.parse(text)
        } catch {
            #expect(error.reason == reason, "\(text.debugDescription): \(error)")
        }
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22],
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],
    ])
    func refusesInvalidUTF8(bytes: [UInt8]) {
        do {
            _ = try JSONParser.parse(bytes)
            Issue.record("accepted \(bytes)")
        } catch {
            #expect(error.reason == .invalidUTF8)
        }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        #expect(throws: JSONError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        _ = try JSONParser.parse(fine)
    }

    @Test func serialisationRoundTrips() throws {
        let text = #"{"a":[1,2.5,"x\"y\\z\u0001"],"b":{"c":null,"d":true}}"#
        let value = try JSONParser.parse(text)
        #expect(try JSONParser.parse(value.serialized()) == value)
        #expect(try JSONParser.parse(value.serialized(pretty: true)) == value)
    }

    /// Equal as JSON means: JSON has one number type, so `6e2` read as 600.0 and written back
    /// as `600` (read as an integer) is the same value.
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x), .object(let y)):
            return x.members.count == y.members.count
                && zip(x.members, y.members).allSatisfy { $0.key == $1.key && same($0.value, $1.value) }
        default: return a == b
        }
    }

    /// Seeded, so a failure replays. Property: every input either is refused with a
    /// `JSONError` or parses to a value that serialises and parses back to itself, and the
    /// generator reaches both sides (the test checks it).
    @Test(arguments: [1, 2, 3] as [UInt64])
    func arbitraryBytesAreRefusedOrRoundTrip(seed: UInt64) throws {
        var generator = SplitMix(state: seed)
        let alphabet = Array("{}[]\":,0123456789.-eE truefalsn\\u".utf8) + [0x00, 0x80, 0xC3, 0xFF]
        var parsed = 0
        var refused = 0
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<40, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            do {
                let value = try JSONParser.parse(bytes)
                parsed += 1
                let again = try JSONParser.parse(value.serialized())
                #expect(Self.same(again, value), "\(String(decoding: bytes, as: UTF8.self)) -> \(value.serialized())")
            } catch is JSONError {
                refused += 1
            }
        }
        #expect(parsed > 20 && refused > 15_000, "parsed \(parsed), refused \(refused)")
    }
}

@Suite struct JSONWriterTests {
    @Test func writesWhatTheParserReadsBack() throws {
        var writer = JSONWriter()
        writer.beginArray()
        writer.beginObject()
        writer.field("time", Int64(-1_767_225_600_000))
        writer.field("mean", 12.345)
        writer.field("whole", 42.0)
        writer.field("nan", Double.nan)
        writer.field("text", "quote\" back\\ line\n tab\t bell\u{7} é")
        writer.field("none", nil as String?)
        writer.field("flag", true)
        writer.key("nested")
        writer.beginArray()
        writer.value(Int64(0))
        writer.value(Int64.min)
        writer.endArray()
        writer.endObject()
        writer.beginObject()
        writer.endObject()
        writer.endArray()
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(
            text
                == #"[{"time":-1767225600000,"mean":12.345,"whole":42,"nan":null,"text":"quote\" back\\ line\n tab\t bell\u0007 é","none":null,"flag":true,"nested":[0,-9223372036854775808]},{}]"#
        )
        let parsed = try JSONParser.parse(writer.bytes)
        #expect(
            parsed
                == .array([
                    .object(
                        JSONObject([
                            ("time", .int(-1_767_225_600_000)), ("mean", .double(12.345)), ("whole", .int(42)),
                            ("nan", .null),
                            ("text", .string("quote\" back\\ line\n tab\t bell\u{7} é")), ("none", .null),
                            ("flag", .bool(true)),
                            ("nested", .array([.int(0), .int(Int64.min)])),
                        ])),
                    .object(JSONObject()),
                ]))
    }
}
