import Crypto
import Foundation
import Testing

@Suite struct Ed25519Tests {
    /// RFC 8032 section 7.1, test 1 (empty message) and test 2 (one byte).
    @Test(arguments: [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ),
    ])
    func rfc8032Vectors(seed: String, publicKey: String, message: String, signature: String) throws {
        let key = try Ed25519.PrivateKey(seed: Hex.decode(seed)!)
        #expect(Hex.encode(key.publicKey.raw) == publicKey)
        let signed = key.sign(Hex.decode(message)!)
        #expect(Hex.encode(signed) == signature)
        #expect(key.publicKey.verify(signature: signed, message: Hex.decode(message)!))
    }

    @Test func tamperedMessagesAndSignaturesFail() throws {
        let key = try Ed25519.PrivateKey()
        let message = Array("release 2.4.1".utf8)
        let signature = key.sign(message)
        #expect(key.publicKey.verify(signature: signature, message: message))
        var flipped = message
        flipped[0] ^= 1
        #expect(!key.publicKey.verify(signature: signature, message: flipped))
        for index in [0, 31, 63] {
            var bad = signature
            bad[index] ^= 0x80
            #expect(!key.publicKey.verify(signature: bad, message: message))
        }
        #expect(!key.publicKey.verify(signature: Array(signature.prefix(63)), message: message))
        let other = try Ed25519.PrivateKey()
        #expect(!other.publicKey.verify(signature: signature, message: message))
    }

    @Test func pemRoundTripsAndInteroperatesWithTheOpenSSLFormats() throws {
        let key = try Ed25519.PrivateKey()
        #expect(key.pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let reloaded = try Ed25519.PrivateKey(pem: key.pem)
        #expect(reloaded.publicKey.raw == key.publicKey.raw)
        let publicPEM = key.publicKey.pem
        #expect(publicPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        #expect(try Ed25519.PublicKey(pem: publicPEM).raw == key.publicKey.raw)
        #expect(key.publicKey.keyID.count == 32)
        #expect(throws: OpenSSLError.self) { try Ed25519.PrivateKey(pem: "not a key") }
        #expect(throws: OpenSSLError.self) { try Ed25519.PublicKey(raw: [1, 2, 3]) }
    }

    @Test func streamingHashMatchesOneShot() throws {
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let hasher = SHA256Hasher()
        hasher.update(Array(data[0..<7]))
        hasher.update(Array(data[7..<65_536]))
        hasher.update(Array(data[65_536...]))
        #expect(hasher.finalize() == SHA256.hash(data))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(UUID()).bin").path
        FileManager.default.createFile(atPath: path, contents: Data(data))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(SHA256Hasher.file(atPath: path) == SHA256.hash(data))
        #expect(SHA256Hasher.file(atPath: path + ".missing") == nil)
    }
}
