import Foundation
import Crypto
import Testing

@Suite struct SHA256Tests {
    /// FIPS 180-2 examples.
    @Test func knownAnswers() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// RFC 4231 test cases 1 and 2.
    @Test func hmacKnownAnswers() {
        #expect(
            Hex.encode(HMACSHA256.authenticate(Array("Hi There".utf8), key: [UInt8](repeating: 0x0b, count: 20)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(
            Hex.encode(HMACSHA256.authenticate(Array("what do ya want for nothing?".utf8), key: Array("Jefe".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func randomBytesDiffer() throws {
        let a = try SecureRandom.bytes(32)
        let b = try SecureRandom.bytes(32)
        #expect(a.count == 32)
        #expect(a != b)
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(constantTimeEquals([], []))
    }
}

/// The line mosquitto_passwd 2.0.11 wrote for alice / s3cret with this salt.
@Suite struct BrokerPasswordTests {
    @Test func matchesMosquittoPasswd() throws {
        let salt = try #require(Data(base64Encoded: "mfK8gH97W7T+c4sG"))
        #expect(
            try BrokerPassword.hash("s3cret", salt: Array(salt))
                == "$7$101$mfK8gH97W7T+c4sG$Mqvd/c40hPlLFnUhJoKmD5jK55ZyOU6E92qRLhhOGBQWZAjKe1b+snKMhypYQ/lJN6M51+yzqPvTFcLMRS0Nyg==")
    }

    @Test func generatedPasswordsAreLongAndDistinct() throws {
        let first = try BrokerPassword.generate()
        let second = try BrokerPassword.generate()
        #expect(first.count == 32 && first != second)
        #expect(first.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
    }
}
