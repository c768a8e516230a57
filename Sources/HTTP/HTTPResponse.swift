/// The statuses this server sends.
public struct HTTPStatus: Sendable, Equatable, Hashable {
    public let code: Int
    public let reason: String

    public init(_ code: Int, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public static let ok = HTTPStatus(200, "OK")
    public static let created = HTTPStatus(201, "Created")
    public static let accepted = HTTPStatus(202, "Accepted")
    public static let noContent = HTTPStatus(204, "No Content")
    public static let found = HTTPStatus(302, "Found")
    public static let badRequest = HTTPStatus(400, "Bad Request")
    public static let unauthorized = HTTPStatus(401, "Unauthorized")
    public static let forbidden = HTTPStatus(403, "Forbidden")
    public static let notFound = HTTPStatus(404, "Not Found")
    public static let methodNotAllowed = HTTPStatus(405, "Method Not Allowed")
    public static let requestTimeout = HTTPStatus(408, "Request Timeout")
    public static let conflict = HTTPStatus(409, "Conflict")
    public static let lengthRequired = HTTPStatus(411, "Length Required")
    public static let payloadTooLarge = HTTPStatus(413, "Content Too Large")
    public static let uriTooLong = HTTPStatus(414, "URI Too Long")
    public static let expectationFailed = HTTPStatus(417, "Expectation Failed")
    public static let unprocessable = HTTPStatus(422, "Unprocessable Content")
    public static let requestHeaderFieldsTooLarge = HTTPStatus(431, "Request Header Fields Too Large")
    public static let internalServerError = HTTPStatus(500, "Internal Server Error")
    public static let notImplemented = HTTPStatus(501, "Not Implemented")
    public static let serviceUnavailable = HTTPStatus(503, "Service Unavailable")
    public static let httpVersionNotSupported = HTTPStatus(505, "HTTP Version Not Supported")
}

/// A response. Small bodies go out with Content-Length; `stream` bodies are written with
/// chunked encoding as they are produced, so a large series never sits whole in memory.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// Called once with a writer; each `write` becomes one chunk.
        case stream(@Sendable (ChunkWriter) throws -> Void)
    }

    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = .bytes(body)
    }

    public init(
        status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(),
        stream: @escaping @Sendable (ChunkWriter) throws -> Void
    ) {
        self.status = status
        self.headers = headers
        self.body = .stream(stream)
    }

    /// A plain-text response, for errors the server answers itself.
    public static func text(_ status: HTTPStatus, _ message: String) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/plain; charset=utf-8")
        return HTTPResponse(status: status, headers: headers, body: Array((message + "\n").utf8))
    }
}

/// Writes the chunks of a streamed body.
public final class ChunkWriter {
    let emit: ([UInt8]) throws -> Void

    init(emit: @escaping ([UInt8]) throws -> Void) {
        self.emit = emit
    }

    public func write(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        try emit(bytes)
    }
}

enum ResponseEncoder {
    /// The status line and headers, ending with the blank line.
    static func head(
        _ response: HTTPResponse, version: HTTPVersion, contentLength: Int?, keepAlive: Bool, date: String
    ) -> [UInt8] {
        var text = "\(version.text) \(response.status.code) \(response.status.reason)\r\n"
        text += "Date: \(date)\r\n"
        for (name, value) in response.headers.fields
        where name != "content-length" && name != "transfer-encoding" && name != "connection" {
            text += "\(canonical(name)): \(sanitized(value))\r\n"
        }
        if let contentLength {
            text += "Content-Length: \(contentLength)\r\n"
        } else {
            text += "Transfer-Encoding: chunked\r\n"
        }
        text += keepAlive ? (version == .http10 ? "Connection: keep-alive\r\n" : "") : "Connection: close\r\n"
        text += "\r\n"
        return Array(text.utf8)
    }

    /// A header value never carries CR or LF, whatever a handler put in it (no response splitting).
    static func sanitized(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else { return value }
        return String(value.unicodeScalars.filter { $0 != "\r" && $0 != "\n" && $0 != "\0" }.map(Character.init))
    }

    static func canonical(_ name: String) -> String {
        name.split(separator: "-", omittingEmptySubsequences: false).map { part in
            part.prefix(1).uppercased() + part.dropFirst()
        }.joined(separator: "-")
    }

    static func chunk(_ bytes: [UInt8]) -> [UInt8] {
        var out = Array(String(bytes.count, radix: 16).utf8)
        out.reserveCapacity(out.count + bytes.count + 4)
        out.append(13)
        out.append(10)
        out.append(contentsOf: bytes)
        out.append(13)
        out.append(10)
        return out
    }
}
