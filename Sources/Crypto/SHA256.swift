import CCrypto

/// SHA-256 from OpenSSL's libcrypto. Nothing cryptographic is written by hand here.
public enum SHA256 {
    /// Fetched once: OpenSSL 3's implicit fetch (`EVP_sha256()` per call) takes global locks,
    /// which made token checks the bottleneck of the REST API under concurrent load.
    nonisolated(unsafe) static let algorithm: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

    public static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok: Int32 =
            bytes.withContiguousStorageIfAvailable { buffer in
                EVP_Digest(buffer.baseAddress, buffer.count, &digest, &length, algorithm ?? EVP_sha256(), nil)
            }
            ?? Array(bytes).withUnsafeBufferPointer { buffer in
                EVP_Digest(buffer.baseAddress, buffer.count, &digest, &length, algorithm ?? EVP_sha256(), nil)
            }
        precondition(ok == 1 && length == 32, "EVP_Digest(SHA-256) failed: \(OpenSSLError.last())")
        return digest
    }

    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        Hex.encode(hash(bytes))
    }
}

/// Random bytes from OpenSSL's CSPRNG, for tokens and nonces.
public enum SecureRandom {
    public static func bytes(_ count: Int) throws(OpenSSLError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&bytes, Int32(count)) == 1 else { throw OpenSSLError.last() }
        return bytes
    }
}

/// Compares secrets (or their hashes) in time that does not depend on where they differ.
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    guard !a.isEmpty else { return true }
    return CRYPTO_memcmp(a, b, a.count) == 0
}

public enum Hex {
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Bytes from hex digits (either case); nil for odd length or a non-hex character.
    public static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 48...57: return digit - 48
        case 65...70: return digit - 55
        case 97...102: return digit - 87
        default: return nil
        }
    }
}

/// The most recent error on OpenSSL's error queue, as text.
public struct OpenSSLError: Error, Sendable, CustomStringConvertible {
    public let code: UInt
    public let message: String

    static func last() -> OpenSSLError {
        let code = ERR_get_error()
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return OpenSSLError(code: code, message: message)
    }

    public var description: String { "OpenSSL error \(code): \(message)" }
}

/// HMAC-SHA-256 from OpenSSL: keyed hashes for pseudonyms, never hand-rolled.
public enum HMACSHA256 {
    public static func authenticate(_ message: some Collection<UInt8>, key: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let bytes = Array(message)
        let result = key.withUnsafeBufferPointer { keyBuffer in
            bytes.withUnsafeBufferPointer { messageBuffer in
                HMAC(
                    EVP_sha256(), keyBuffer.baseAddress, Int32(keyBuffer.count), messageBuffer.baseAddress,
                    messageBuffer.count, &digest, &length)
            }
        }
        precondition(result != nil && length == 32, "HMAC(SHA-256) failed: \(OpenSSLError.last())")
        return digest
    }
}
