/// Why a request could not be read, with the status it earns. The message goes into the
/// error body and the log, so it names what was wrong.
public enum HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    case badRequest(String)
    case requestTimeout
    case lengthRequired
    case payloadTooLarge(limit: Int)
    case uriTooLong(limit: Int)
    case headersTooLarge(String)
    case expectationFailed(String)
    case notImplemented(String)
    case versionNotSupported(String)
    /// The server cannot take the request now (too many connections).
    case unavailable(String)

    public var status: HTTPStatus {
        switch self {
        case .badRequest: return .badRequest
        case .requestTimeout: return .requestTimeout
        case .lengthRequired: return .lengthRequired
        case .payloadTooLarge: return .payloadTooLarge
        case .uriTooLong: return .uriTooLong
        case .headersTooLarge: return .requestHeaderFieldsTooLarge
        case .expectationFailed: return .expectationFailed
        case .notImplemented: return .notImplemented
        case .versionNotSupported: return .httpVersionNotSupported
        case .unavailable: return .serviceUnavailable
        }
    }

    /// A short machine-readable code for logs and metrics.
    public var code: String {
        switch self {
        case .badRequest: return "bad_request"
        case .requestTimeout: return "request_timeout"
        case .lengthRequired: return "length_required"
        case .payloadTooLarge: return "payload_too_large"
        case .uriTooLong: return "uri_too_long"
        case .headersTooLarge: return "headers_too_large"
        case .expectationFailed: return "expectation_failed"
        case .notImplemented: return "not_implemented"
        case .versionNotSupported: return "version_not_supported"
        case .unavailable: return "unavailable"
        }
    }

    public var description: String {
        switch self {
        case .badRequest(let why): return why
        case .requestTimeout: return "the request was not received in time"
        case .lengthRequired: return "a request with a body needs Content-Length or Transfer-Encoding: chunked"
        case .payloadTooLarge(let limit): return "the body is larger than this route accepts (\(limit) bytes)"
        case .uriTooLong(let limit): return "the request line is longer than \(limit) bytes"
        case .headersTooLarge(let why): return why
        case .expectationFailed(let why): return why
        case .notImplemented(let why): return why
        case .versionNotSupported(let version): return "HTTP version \(version) is not supported; use HTTP/1.1"
        case .unavailable(let why): return why
        }
    }
}
