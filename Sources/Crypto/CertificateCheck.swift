import CCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// The security checks run on TLS material at start and every hour: problems an installer
/// can fix, found before they break the link (an expired certificate) or leak a secret (a
/// key readable by others). Each problem names the file and what to do.
public enum CertificateCheck {
    public struct Finding: Sendable, Equatable, CustomStringConvertible {
        public enum Severity: String, Sendable { case warning, error }
        public let severity: Severity
        public let file: String
        public let message: String

        public var description: String { "\(file): \(message)" }
    }

    public struct Result: Sendable {
        public var findings: [Finding] = []
        /// Seconds until the client certificate expires (negative once expired), if it was read.
        public var secondsToExpiry: Int64?

        public var hasErrors: Bool { findings.contains { $0.severity == .error } }
    }

    /// Checks a CA file, a client certificate and its key. `warnWithin` is how close to expiry
    /// a certificate may come before a warning (30 days by default).
    public static func run(
        caFile: String, certFile: String?, keyFile: String?, warnWithinSeconds: Int64 = 30 * 86_400
    ) -> Result {
        var result = Result()
        func error(_ file: String, _ message: String) {
            result.findings.append(Finding(severity: .error, file: file, message: message))
        }
        func warning(_ file: String, _ message: String) {
            result.findings.append(Finding(severity: .warning, file: file, message: message))
        }
        if readCertificates(caFile).isEmpty {
            error(
                caFile, "no PEM certificate could be read: point upstream.tls.ca_file at the CA that signed the server")
        }
        guard let certFile, let keyFile else { return result }
        var info = stat()
        if stat(keyFile, &info) != 0 {
            error(keyFile, "cannot stat the key file: \(String(cString: strerror(errno)))")
        } else if info.st_mode & 0o077 != 0 {
            error(
                keyFile,
                "private key is readable by group or others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 \(keyFile)"
            )
        }
        guard let certificate = readCertificates(certFile).first else {
            error(certFile, "no PEM certificate could be read: check upstream.tls.cert_file")
            return result
        }
        defer { X509_free(certificate) }
        var days: Int32 = 0
        var seconds: Int32 = 0
        if ASN1_TIME_diff(&days, &seconds, nil, X509_get0_notAfter(certificate)) == 1 {
            let remaining = Int64(days) * 86_400 + Int64(seconds)
            result.secondsToExpiry = remaining
            if remaining <= 0 {
                error(certFile, "client certificate expired \(-remaining / 86_400) days ago: issue a new one")
            } else if remaining < warnWithinSeconds {
                warning(certFile, "client certificate expires in \(remaining / 86_400) days: renew it now")
            }
        }
        if X509_cmp_current_time(X509_get0_notBefore(certificate)) > 0 {
            error(certFile, "client certificate is not valid yet: check the board's clock")
        }
        guard let key = readPrivateKey(keyFile) else {
            error(
                keyFile,
                "no PEM private key could be read (an encrypted key is not supported): check upstream.tls.key_file")
            return result
        }
        defer { EVP_PKEY_free(key) }
        if X509_check_private_key(certificate, key) != 1 {
            ERR_clear_error()
            error(keyFile, "the key does not belong to \(certFile): install the matching pair")
        }
        return result
    }

    static func readCertificates(_ path: String) -> [OpaquePointer] {
        guard let bio = BIO_new_file(path, "r") else {
            ERR_clear_error()
            return []
        }
        defer { BIO_free(bio) }
        var certificates: [OpaquePointer] = []
        while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { certificates.append(certificate) }
        ERR_clear_error()
        if certificates.count > 1 { certificates.dropFirst().forEach { X509_free($0) } }
        return Array(certificates.prefix(1))
    }

    static func readPrivateKey(_ path: String) -> OpaquePointer? {
        guard let bio = BIO_new_file(path, "r") else {
            ERR_clear_error()
            return nil
        }
        defer { BIO_free(bio) }
        let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        ERR_clear_error()
        return key
    }
}
