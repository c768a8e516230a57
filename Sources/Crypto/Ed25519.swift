import CCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// Ed25519 keys and signatures from OpenSSL's libcrypto.
///
/// Why Ed25519: signatures are small and fixed (64 bytes), verification is cheap on a vehicle
/// unit, and there are no parameters to get wrong. Operators keep the private key; gateways
/// and vehicles hold only public keys.
public enum Ed25519 {
    public static let publicKeyLength = 32
    public static let signatureLength = 64

    /// A private key. The handle is freed in `deinit`; OpenSSL keys are safe to use from
    /// several threads once built, and nothing here mutates the key.
    public final class PrivateKey: @unchecked Sendable {
        let pkey: OpaquePointer

        /// A fresh key from OpenSSL's CSPRNG.
        public init() throws(OpenSSLError) {
            guard let context = EVP_PKEY_CTX_new_from_name(nil, "ED25519", nil) else { throw .last() }
            defer { EVP_PKEY_CTX_free(context) }
            var key: OpaquePointer?
            guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_generate(context, &key) == 1, let key else {
                throw .last()
            }
            pkey = key
        }

        /// The key from a PEM file's text (PKCS#8 "PRIVATE KEY", as `openssl genpkey -algorithm ed25519` writes).
        public init(pem: String) throws(OpenSSLError) {
            let loaded: OpaquePointer? = withMemoryBIO(pem) { bio in PEM_read_bio_PrivateKey(bio, nil, nil, nil) }
            guard let loaded else { throw .last() }
            guard EVP_PKEY_is_a(loaded, "ED25519") == 1 else {
                EVP_PKEY_free(loaded)
                throw OpenSSLError(code: 0, message: "the PEM key is not an Ed25519 key")
            }
            pkey = loaded
        }

        /// From the 32-byte seed (RFC 8032), for test vectors.
        public init(seed: [UInt8]) throws(OpenSSLError) {
            guard seed.count == 32,
                let key = EVP_PKEY_new_raw_private_key_ex(nil, "ED25519", nil, seed, seed.count)
            else { throw .last() }
            pkey = key
        }

        deinit { EVP_PKEY_free(pkey) }

        public var publicKey: PublicKey {
            var raw = [UInt8](repeating: 0, count: 32)
            var length = 32
            let ok = EVP_PKEY_get_raw_public_key(pkey, &raw, &length)
            precondition(ok == 1 && length == 32, "Ed25519 public key extraction failed")
            // A raw 32-byte Ed25519 public key is always accepted by OpenSSL.
            return try! PublicKey(raw: raw)
        }

        /// PKCS#8 PEM, the format `openssl pkey` reads.
        public var pem: String {
            memoryBIOText { bio in PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) }
        }

        public func sign(_ message: some Collection<UInt8>) -> [UInt8] {
            let context = EVP_MD_CTX_new()
            defer { EVP_MD_CTX_free(context) }
            var signature = [UInt8](repeating: 0, count: 64)
            var length = 64
            let bytes = Array(message)
            let ok =
                EVP_DigestSignInit(context, nil, nil, nil, pkey) == 1
                && EVP_DigestSign(context, &signature, &length, bytes, bytes.count) == 1
            precondition(ok && length == 64, "Ed25519 signing failed: \(OpenSSLError.last())")
            return signature
        }
    }

    public final class PublicKey: @unchecked Sendable {
        let pkey: OpaquePointer
        /// The 32 raw bytes, which is what configuration files and manifests name.
        public let raw: [UInt8]

        public init(raw: [UInt8]) throws(OpenSSLError) {
            guard raw.count == 32, let key = EVP_PKEY_new_raw_public_key_ex(nil, "ED25519", nil, raw, raw.count)
            else {
                throw OpenSSLError(code: 0, message: "an Ed25519 public key is 32 bytes, got \(raw.count)")
            }
            pkey = key
            self.raw = raw
        }

        /// From a PEM "PUBLIC KEY" (SubjectPublicKeyInfo), as `openssl pkey -pubout` writes.
        public convenience init(pem: String) throws(OpenSSLError) {
            let loaded: OpaquePointer? = withMemoryBIO(pem) { bio in PEM_read_bio_PUBKEY(bio, nil, nil, nil) }
            guard let loaded else { throw .last() }
            defer { EVP_PKEY_free(loaded) }
            guard EVP_PKEY_is_a(loaded, "ED25519") == 1 else {
                throw OpenSSLError(code: 0, message: "the PEM key is not an Ed25519 key")
            }
            var raw = [UInt8](repeating: 0, count: 32)
            var length = 32
            guard EVP_PKEY_get_raw_public_key(loaded, &raw, &length) == 1, length == 32 else { throw .last() }
            try self.init(raw: raw)
        }

        deinit { EVP_PKEY_free(pkey) }

        public var pem: String {
            memoryBIOText { bio in PEM_write_bio_PUBKEY(bio, pkey) }
        }

        /// The key's short name in manifests: the first 16 bytes of SHA-256 over the raw key, in hex.
        public var keyID: String { Hex.encode(SHA256.hash(raw).prefix(16)) }

        /// True only for a valid signature by this key over exactly these bytes.
        public func verify(signature: [UInt8], message: some Collection<UInt8>) -> Bool {
            guard signature.count == 64 else { return false }
            let context = EVP_MD_CTX_new()
            defer { EVP_MD_CTX_free(context) }
            let bytes = Array(message)
            guard EVP_DigestVerifyInit(context, nil, nil, nil, pkey) == 1 else {
                ERR_clear_error()
                return false
            }
            let result = EVP_DigestVerify(context, signature, 64, bytes, bytes.count)
            if result != 1 { ERR_clear_error() }
            return result == 1
        }
    }
}

private func withMemoryBIO<T>(_ text: String, _ body: (OpaquePointer?) -> T) -> T {
    var bytes = Array(text.utf8)
    return bytes.withUnsafeMutableBytes { raw in
        let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
        defer { BIO_free(bio) }
        return body(bio)
    }
}

private func memoryBIOText(_ write: (OpaquePointer?) -> Int32) -> String {
    let bio = BIO_new(BIO_s_mem())
    defer { BIO_free(bio) }
    precondition(write(bio) == 1, "PEM encoding failed: \(OpenSSLError.last())")
    var pointer: UnsafeMutablePointer<CChar>?
    let length = ccrypto_bio_get_mem_data(bio, &pointer)
    guard length > 0, let pointer else { return "" }
    return pointer.withMemoryRebound(to: UInt8.self, capacity: Int(length)) { base in
        String(decoding: UnsafeBufferPointer(start: base, count: Int(length)), as: UTF8.self)
    }
}

/// SHA-256 over data that arrives in pieces (a firmware image streamed from disk or the
/// network), so an image is never held whole in memory to be hashed.
public final class SHA256Hasher {
    private let context: OpaquePointer

    public init() {
        context = EVP_MD_CTX_new()
        precondition(EVP_DigestInit_ex(context, SHA256.algorithm ?? EVP_sha256(), nil) == 1, "SHA-256 init failed")
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        precondition(EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1, "SHA-256 update failed")
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(context, &digest, &length) == 1 && length == 32, "SHA-256 final failed")
        return digest
    }

    /// The SHA-256 of a file, read in 1 MiB pieces; nil when it cannot be read.
    public static func file(atPath path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let hasher = SHA256Hasher()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        return hasher.finalize()
    }
}
