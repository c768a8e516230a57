import JSON
import Testing

@Suite struct CanonicalJSONTests {
    func canonical(_ text: String) throws -> String {
        String(decoding: try JSONParser.parse(text).canonicalBytes(), as: UTF8.self)
    }

    @Test func membersSortedWhitespaceGoneEscapesMinimal() throws {
        #expect(
            try canonical(#"{ "b": [1, true, null], "a": {"z": "x", "y": -3}, "\u00e9": "é", "A": "" }"#)
                == #"{"A":"","a":{"y":-3,"z":"x"},"b":[1,true,null],"é":"é"}"#)
        #expect(try canonical(#""tab\tquote\"back\\slash\u0001\u007f/""#) == "\"tab\\tquote\\\"back\\\\slash\\u0001\u{7f}/\"")
        #expect(try canonical("9007199254740991") == "9007199254740991")
    }

    /// RFC 8785 orders by UTF-16 code units, so U+FF61 sorts after U+1F600 (a surrogate pair).
    @Test func utf16Ordering() throws {
        #expect(try canonical(#"{"\uff61":1,"\ud83d\ude00":2}"#) == "{\"😀\":2,\"｡\":1}")
    }

    @Test func floatsAndHugeIntegersAreRefused() {
        #expect(throws: CanonicalJSONError.nonInteger(path: "$.a[1]")) { try canonical(#"{"a":[1,1.5]}"#) }
        #expect(throws: CanonicalJSONError.integerOutOfRange(path: "$.n")) { try canonical(#"{"n":9007199254740992}"#) }
    }
}
