public import HTTP
import Logging
import RingStore
import Suggest
import Telemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The API as the HTTP server sees it: routing, authentication and CORS before a body is
/// read, JSON errors, and a metric and (for failures) a log line per exchange.
extension APIService: HTTPHandler {
    public func admit(_ head: RequestHead) -> Admission {
        let candidates = routes.compactMap { route in route.match(head.segments).map { (route, $0) } }
        guard !candidates.isEmpty else {
            return .reject(
                APIError(.notFound, "not_found", "no route for \(head.path.prefix(200)); see /v1/openapi.json")
                    .response, label: "(unmatched)")
        }
        let method = head.method == "HEAD" ? "GET" : head.method
        let methods = candidates.map(\.0.method)
        let allowed = Set(methods + ["OPTIONS"] + (methods.contains("GET") ? ["HEAD"] : [])).sorted()
        if head.method == "OPTIONS" {
            return .reject(preflight(head, allowed: allowed), label: candidates[0].0.label)
        }
        guard let (route, _) = candidates.first(where: { $0.0.method == method }) else {
            var error = APIError(
                .methodNotAllowed, "method_not_allowed",
                "\(head.method) is not allowed on \(candidates[0].0.label); allowed: \(allowed.joined(separator: ", "))"
            )
            error.headers = [("Allow", allowed.joined(separator: ", "))]
            return .reject(withCORS(error.response, head), label: candidates[0].0.label)
        }
        if let failure = authorize(route.access, head) {
            return .reject(withCORS(failure.response, head), label: route.label)
        }
        return .accept(maxBodyBytes: route.maxBodyBytes, label: route.label)
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        let method = request.method == "HEAD" ? "GET" : request.method
        guard
            let (route, parameters) = routes.lazy.compactMap({ route in
                route.method == method ? route.match(request.segments).map { (route, $0) } : nil
            }).first
        else {
            return APIError(.notFound, "not_found", "no route for \(request.head.path.prefix(200))").response
        }
        var response: HTTPResponse
        do {
            try checkQuery(request.head, allowed: route.query.map(\.name))
            response = try route.handler(self, request, parameters)
        } catch {
            response = error.response
        }
        response.headers.add("Cache-Control", "no-store")
        response.headers.add("X-Content-Type-Options", "nosniff")
        return withCORS(response, request.head)
    }

    public func errorResponse(_ error: HTTPError) -> HTTPResponse {
        APIError(error.status, error.code, error.description).response
    }

    public func finished(_ exchange: Exchange) {
        let status = String(exchange.status)
        // A request refused or broken before its method was read counts as method "none".
        requests.add([exchange.label, exchange.method.isEmpty ? "none" : exchange.method, status])
        latency.observe([exchange.label], Double(exchange.durationNanos) / 1e9)
        guard exchange.status >= 400 || exchange.status == 0 else {
            logger.debug(
                "http_request",
                [
                    ("http.route", exchange.label), ("http.method", exchange.method), ("http.status", status),
                    ("duration_us", String(exchange.durationNanos / 1000)), ("peer", exchange.peer),
                ])
            return
        }
        guard let suppressed = logLimiter.admit(nowSecond: Int64(time(nil))) else { return }
        var fields: [(String, String)] = [
            ("http.route", exchange.label), ("http.method", exchange.method), ("http.status", status),
            ("peer", exchange.peer),
        ]
        if let error = exchange.error { fields.append(("error", error.description)) }
        if suppressed > 0 { fields.append(("suppressed_since_last", String(suppressed))) }
        if exchange.status >= 500 || exchange.status == 0 {
            logger.warning("http_request_failed", fields)
        } else {
            logger.info("http_request_refused", fields)
        }
    }

    /// Nil when the request may proceed, else the 401 or 403 to answer.
    /// Whether the request's token may see individual vehicle positions (the `positions` scope).
    func seesPositions(_ request: HTTPRequest) -> Bool {
        authority.scopes(authorization: request.head.headers["authorization"]).contains(.positions)
    }

    static func isPosition(_ signal: Signal) -> Bool {
        RingStore.positionSignals.contains { $0.id == signal.id }
    }

    func authorize(_ access: Access, _ head: RequestHead) -> APIError? {
        let required: Role
        switch access {
        case .public: return nil
        case .health:
            if configuration.openHealth { return nil }
            required = .viewer
        case .metrics:
            if configuration.openMetrics { return nil }
            required = .viewer
        case .viewer: required = .viewer
        case .operator: required = .operator
        }
        switch authority.authenticate(authorization: head.headers["authorization"]) {
        case .missing:
            var error = APIError(
                .unauthorized, "unauthorized",
                "this route needs a bearer token (Authorization: Bearer <token>); gwctl token new makes one")
            error.headers = [("WWW-Authenticate", "Bearer realm=\"telemetry-gateway\"")]
            return error
        case .invalid(let why):
            var error = APIError(.unauthorized, "unauthorized", why)
            error.headers = [("WWW-Authenticate", "Bearer realm=\"telemetry-gateway\", error=\"invalid_token\"")]
            return error
        case .authenticated(let name, let role):
            guard role >= required else {
                return APIError(
                    .forbidden, "forbidden",
                    "token \"\(name)\" has role \(role.rawValue); this route needs \(required.rawValue)")
            }
            return nil
        }
    }

    func checkQuery(_ head: RequestHead, allowed: [String]) throws(APIError) {
        var seen = Set<String>()
        for (name, _) in head.query {
            guard allowed.contains(name) else {
                var message = "unknown query parameter"
                if let suggestion = Suggestion.closest(to: name, in: allowed) {
                    message += "; did you mean \(suggestion)?"
                }
                if !allowed.isEmpty { message += " (this route takes \(allowed.joined(separator: ", ")))" }
                throw .badParameter(String(name.prefix(64)), message)
            }
            guard seen.insert(name).inserted else { throw .badParameter(name, "given more than once") }
        }
    }

    /// Answers a CORS preflight: 204 with the allowed methods for a listed origin, else 204
    /// without CORS headers (the browser then refuses, as it should).
    func preflight(_ head: RequestHead, allowed: [String]) -> HTTPResponse {
        var response = HTTPResponse(status: .noContent)
        response.headers.add("Allow", allowed.joined(separator: ", "))
        if let origin = head.headers["origin"], configuration.corsOrigins.contains(origin) {
            response.headers.add("Access-Control-Allow-Origin", origin)
            response.headers.add("Access-Control-Allow-Methods", allowed.joined(separator: ", "))
            response.headers.add("Access-Control-Allow-Headers", "Authorization, Content-Type")
            response.headers.add("Access-Control-Max-Age", "600")
            response.headers.add("Vary", "Origin")
        }
        return response
    }

    func withCORS(_ response: HTTPResponse, _ head: RequestHead) -> HTTPResponse {
        guard let origin = head.headers["origin"], configuration.corsOrigins.contains(origin) else { return response }
        var response = response
        response.headers.add("Access-Control-Allow-Origin", origin)
        response.headers.add("Vary", "Origin")
        return response
    }
}
