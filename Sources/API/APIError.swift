public import HTTP
import JSON

/// An error answered as `{"error": {"code": "...", "message": "..."}}`.
public struct APIError: Error, Sendable {
    public var status: HTTPStatus
    public var code: String
    public var message: String
    public var headers: [(String, String)] = []

    public init(_ status: HTTPStatus, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public static func badParameter(_ name: String, _ message: String) -> APIError {
        APIError(.badRequest, "invalid_parameter", "\(name): \(message)")
    }

    var response: HTTPResponse {
        let body = JSONValue.object(
            JSONObject([
                ("error", .object(JSONObject([("code", .string(code)), ("message", .string(message))])))
            ]))
        var response = HTTPResponse.json(body, status: status)
        for (name, value) in headers { response.headers.add(name, value) }
        return response
    }
}

extension HTTPResponse {
    static func json(bytes: [UInt8], status: HTTPStatus = .ok) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: bytes)
    }

    static func json(_ value: JSONValue, status: HTTPStatus = .ok) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: Array(value.serialized().utf8))
    }
}
