/// What the server asks of the application: whether to read a request's body (and how much
/// of it), the response, and a report of each finished exchange.
public protocol HTTPHandler: Sendable {
    /// Decides before the body is read, so an unknown route or a missing token never makes
    /// the server buffer an upload.
    func admit(_ head: RequestHead) -> Admission
    func respond(to request: HTTPRequest) -> HTTPResponse
    /// How protocol errors (400, 408, 413 ...) look to clients.
    func errorResponse(_ error: HTTPError) -> HTTPResponse
    /// Called after each response was written (or failed to be): for metrics and access logs.
    func finished(_ exchange: Exchange)
}

public enum Admission: Sendable {
    /// Read up to this many body bytes; `label` names the route in `finished`.
    case accept(maxBodyBytes: Int, label: String)
    /// Answer this instead; a body that was announced is not read and the connection closes.
    case reject(HTTPResponse, label: String)
}

/// One request/response exchange, as reported to `HTTPHandler.finished`.
public struct Exchange: Sendable {
    /// The route label from `admit`, or `"(invalid)"` when the request could not be parsed.
    public var label: String
    public var method: String
    public var status: Int
    public var durationNanos: UInt64
    public var peer: String
    /// Why the server answered itself (protocol errors), else nil.
    public var error: HTTPError?
}

extension HTTPHandler {
    public func errorResponse(_ error: HTTPError) -> HTTPResponse {
        .text(error.status, error.description)
    }

    public func finished(_ exchange: Exchange) {}
}
