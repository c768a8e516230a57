import CCrypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A password line for mosquitto's `password_file`, in the format `mosquitto_passwd` writes
/// (`$7$`: PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte key), computed by OpenSSL.
///
/// 101 iterations is mosquitto's own default and is checked on every CONNECT, so a depot full
/// of reconnecting vehicles stays cheap for the broker; the passwords `gwctl device add` makes
/// are 192 random bits, which no iteration count needs to stretch.
public enum BrokerPassword {
    public static let iterations = 101

    /// The `$7$…` hash of `password` with `salt` (12 random bytes unless given).
    public static func hash(_ password: String, salt given: [UInt8]? = nil) throws(OpenSSLError) -> String {
        let salt: [UInt8]
        if let given {
            salt = given
        } else {
            salt = try SecureRandom.bytes(12)
        }
        var key = [UInt8](repeating: 0, count: 64)
        let secret = Array(password.utf8)
        let ok = secret.withUnsafeBufferPointer { secretBuffer in
            secretBuffer.withMemoryRebound(to: CChar.self) { chars in
                PKCS5_PBKDF2_HMAC(
                    chars.baseAddress, Int32(secret.count), salt, Int32(salt.count), Int32(iterations), EVP_sha512(),
                    Int32(key.count), &key)
            }
        }
        guard ok == 1 else { throw OpenSSLError.last() }
        return "$7$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    /// A new random password: 24 bytes from OpenSSL's CSPRNG, base64url without padding.
    public static func generate() throws(OpenSSLError) -> String {
        Data(try SecureRandom.bytes(24)).base64EncodedString()
            .replacing("+", with: "-").replacing("/", with: "_")
    }
}
