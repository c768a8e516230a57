import HTTP
import JSON

/// Who may call a route.
enum Access: Sendable, Equatable {
    /// Open when `http.open_health` is set, else viewer.
    case health
    /// Open when `http.open_metrics` is set, else viewer.
    case metrics
    case viewer
    case `operator`
    /// Anyone: the console's files, which hold no data (what the page shows needs a token).
    case `public`
}

/// A query parameter a route accepts, for validation and for the OpenAPI document.
struct QueryParameter: Sendable {
    var name: String
    var description: String
    var schema: JSONValue
    var required = false
}

/// One endpoint: its path pattern, who may call it, and what it answers. The OpenAPI
/// document is generated from this table, so the two cannot drift apart.
struct Route: Sendable {
    var method: String
    /// Path segments; `{name}` marks a parameter.
    var pattern: [String]
    var access: Access
    var summary: String
    var query: [QueryParameter] = []
    var responseType = "application/json"
    var responseSchema: JSONValue
    /// The JSON body a write route takes (nil: none).
    var requestSchema: JSONValue? = nil
    var requestType = "application/json"
    var maxBodyBytes = 0
    /// The statuses a success answers with, for the document (a POST that stores answers 201).
    var successes: [(code: String, description: String)] = [("200", "OK")]
    /// Failures of this route beyond those every route has, for the document.
    var failures: [(code: String, description: String)] = []
    /// What the `positions` scope changes on this route (nil: nothing), for the document.
    var positionsScope: String? = nil
    var handler: @Sendable (APIService, HTTPRequest, [String: String]) throws(APIError) -> HTTPResponse

    var label: String { "/" + pattern.joined(separator: "/") }

    /// The path parameters when the segments fit this route's pattern.
    func match(_ segments: [String]) -> [String: String]? {
        guard segments.count == pattern.count else { return nil }
        var parameters: [String: String] = [:]
        for (part, segment) in zip(pattern, segments) {
            if part.hasPrefix("{") {
                parameters[String(part.dropFirst().dropLast())] = segment
            } else if part != segment {
                return nil
            }
        }
        return parameters
    }
}
