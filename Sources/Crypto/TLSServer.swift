import CCrypto

/// A server-side TLS configuration (certificate chain and key) for native HTTPS.
///
/// TLS 1.2 is the floor, compression and renegotiation are off: the gateway's API is reached
/// by dashboards and scripts that all speak modern TLS, so nothing older is worth its risks.
public final class TLSServerContext: @unchecked Sendable {
    let context: OpaquePointer

    public init(certFile: String, keyFile: String) throws(TLSError) {
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw .setup("SSL_CTX_new failed: \(OpenSSLError.last())")
        }
        self.context = context
        _ = ccrypto_ssl_ctx_set_min_tls12(context)
        _ = ccrypto_ssl_ctx_set_options(context, ccrypto_ssl_server_options())
        guard SSL_CTX_use_certificate_chain_file(context, certFile) == 1 else {
            throw .setup("cannot load certificate chain \(certFile): \(OpenSSLError.last())")
        }
        guard SSL_CTX_use_PrivateKey_file(context, keyFile, SSL_FILETYPE_PEM) == 1 else {
            throw .setup("cannot load private key \(keyFile): \(OpenSSLError.last())")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw .setup("\(keyFile) does not match the certificate in \(certFile)")
        }
    }

    deinit { SSL_CTX_free(context) }
}

/// A client-side TLS configuration that trusts one CA file (a city's private CA), for tools
/// that talk to a gateway whose certificate the system store does not know.
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer

    public init(caFile: String) throws(TLSError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw .setup("SSL_CTX_new failed: \(OpenSSLError.last())")
        }
        self.context = context
        _ = ccrypto_ssl_ctx_set_min_tls12(context)
        guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
            throw .setup("cannot load CA certificates from \(caFile): \(OpenSSLError.last())")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
    }

    deinit { SSL_CTX_free(context) }
}

public enum TLSError: Error, Sendable, CustomStringConvertible {
    case setup(String)
    case handshake(String)
    case io(String)

    public var description: String {
        switch self {
        case .setup(let message): return "TLS setup: \(message)"
        case .handshake(let message): return "TLS handshake: \(message)"
        case .io(let message): return "TLS: \(message)"
        }
    }
}

/// One server-side TLS session over a connected socket the caller owns and polls.
///
/// Every operation returns at once with what OpenSSL needs next, so the caller keeps its
/// own deadlines (slow-client timeouts) and never blocks inside OpenSSL.
public final class TLSSession {
    public enum Progress: Equatable {
        case done(Int)
        case wantRead
        case wantWrite
        /// The peer closed the session (close_notify or EOF).
        case closed
    }

    private let ssl: OpaquePointer

    public init(context: TLSServerContext, socket: Int32) throws(TLSError) {
        guard let ssl = SSL_new(context.context) else { throw .setup("SSL_new failed: \(OpenSSLError.last())") }
        self.ssl = ssl
        SSL_set_fd(ssl, socket)
        SSL_set_accept_state(ssl)
    }

    /// A client session that verifies the server's certificate chain and that it names `host`
    /// (a DNS name, or an IP address matched against the certificate's IP entries).
    public init(client context: TLSClientContext, socket: Int32, host: String) throws(TLSError) {
        guard let ssl = SSL_new(context.context) else { throw .setup("SSL_new failed: \(OpenSSLError.last())") }
        self.ssl = ssl
        SSL_set_fd(ssl, socket)
        SSL_set_connect_state(ssl)
        let isAddress = host.contains(":") || host.split(separator: ".").allSatisfy { UInt8($0) != nil }
        if isAddress {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 else {
                throw .setup("\(host) is not an IP address OpenSSL can match")
            }
        } else {
            _ = ccrypto_ssl_set_sni(ssl, host)
            guard SSL_set1_host(ssl, host) == 1 else { throw .setup("cannot verify against host name \(host)") }
        }
    }

    deinit { SSL_free(ssl) }

    /// Bytes already decrypted and waiting: read them before polling the socket.
    public var pending: Int { Int(SSL_pending(ssl)) }

    public func handshake() throws(TLSError) -> Progress {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .done(0) }
        return try progress(result, doing: "handshake")
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> Progress {
        ERR_clear_error()
        var count = 0
        let result = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count)
        if result == 1 { return .done(count) }
        return try progress(result, doing: "read")
    }

    public func write(_ buffer: UnsafeRawBufferPointer) throws(TLSError) -> Progress {
        ERR_clear_error()
        var count = 0
        let result = SSL_write_ex(ssl, buffer.baseAddress, buffer.count, &count)
        if result == 1 { return .done(count) }
        return try progress(result, doing: "write")
    }

    /// Sends close_notify; best effort, the socket is closed right after.
    public func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
    }

    private func progress(_ result: Int32, doing action: String) throws(TLSError) -> Progress {
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let error = OpenSSLError.last()
            if error.code == 0 { return .closed }
            throw action == "handshake" ? .handshake(error.message) : .io(error.message)
        default:
            let error = OpenSSLError.last()
            throw action == "handshake" ? .handshake(error.message) : .io(error.message)
        }
    }
}
