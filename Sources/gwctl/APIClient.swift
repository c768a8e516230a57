import Crypto
import Foundation
import HTTP
import JSON

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Why a request to the gateway failed, worded for the operator at the terminal.
enum ClientError: Error, CustomStringConvertible {
    case unreachable(url: String, reason: String)
    /// `--gateway` (or GWCTL_GATEWAY) is not a URL gwctl can use.
    case malformedURL(String, reason: String)
    case unauthorized(String)
    case forbidden(String)
    case failed(status: Int, code: String, message: String)
    case badResponse(String)
    /// A local command that cannot go on: what was wrong and what to do.
    case usage(String)

    var description: String {
        switch self {
        case .unreachable(let url, let reason):
            return "cannot reach the gateway at \(url): \(reason); is gatewayd running, and is --gateway "
                + "(or GWCTL_GATEWAY) its http.listen address?"
        case .malformedURL(let url, let reason):
            return "--gateway \"\(url)\" is not a usable URL: \(reason); give it as http://HOST:PORT or "
                + "https://HOST:PORT (or set GWCTL_GATEWAY)"
        case .unauthorized(let message):
            return "the gateway refused the request (401): \(message). Pass --token or set GWCTL_TOKEN; "
                + "gwctl token new makes a token and the line for http.tokens"
        case .forbidden(let message):
            return "the token may not do this (403): \(message)"
        case .failed(let status, let code, let message):
            return "the gateway answered \(status) \(code): \(message)"
        case .badResponse(let why):
            return "the gateway's answer could not be read: \(why)"
        case .usage(let message):
            return message
        }
    }

    /// sysexits-style codes, so scripts can tell "down" from "not allowed" from "bad request".
    var exitCode: Int32 {
        switch self {
        case .unreachable: return 69
        case .malformedURL: return 64
        case .unauthorized, .forbidden: return 77
        case .failed(let status, _, _): return status >= 500 ? 69 : 65
        case .badResponse: return 76
        case .usage: return 65
        }
    }
}

/// A blocking client of the gateway's REST API (URLSession underneath).
struct APIClient {
    let base: String
    let token: String?
    /// A CA file to verify an https gateway with (`--cacert`); nil uses Foundation's client and
    /// the system's CA store.
    var caFile: String? = nil

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    func get(_ path: String, query: [(String, String?)] = [], accepting: Set<Int> = []) throws(ClientError) -> Response
    {
        try send("GET", path, query: query, accepting: accepting)
    }

    func send(
        _ method: String, _ path: String, query: [(String, String?)] = [], json body: Data? = nil,
        contentType: String = "application/json", timeout: Double = 15, accepting: Set<Int> = []
    ) throws(ClientError) -> Response {
        guard let baseComponents = URLComponents(string: base) else {
            throw .malformedURL(base, reason: "it does not parse")
        }
        guard baseComponents.scheme == "http" || baseComponents.scheme == "https" else {
            throw .malformedURL(base, reason: "it does not start with http:// or https://")
        }
        guard let host = baseComponents.host, !host.isEmpty else {
            throw .malformedURL(base, reason: "it names no host")
        }
        guard baseComponents.query == nil, baseComponents.fragment == nil else {
            throw .malformedURL(base, reason: "a base URL takes no ?query or #fragment")
        }
        var components = URLComponents(string: base.hasSuffix("/") ? String(base.dropLast()) + path : base + path)
        let items = query.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
        if !items.isEmpty { components?.queryItems = items }
        guard let url = components?.url else { throw .malformedURL(base, reason: "it does not parse with \(path)") }
        if let caFile {
            return try sendInHouse(
                method, url, caFile: caFile, body: body, contentType: contentType, accepting: accepting)
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpMethod = method
        if let body {
            request.httpBody = body
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            box.set(data: data, response: response as? HTTPURLResponse, error: error)
            done.signal()
        }.resume()
        done.wait()
        let (data, response, error) = box.get()
        guard let response else {
            throw .unreachable(url: base, reason: error?.localizedDescription ?? "no response")
        }
        var headers: [String: String] = [:]
        for (name, value) in response.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        return try Self.accepted(
            Response(status: response.statusCode, headers: headers, body: data ?? Data()), also: accepting)
    }

    /// The same request through the project's own client, trusting `caFile`.
    private func sendInHouse(
        _ method: String, _ url: URL, caFile: String, body: Data?, contentType: String, accepting: Set<Int>
    ) throws(ClientError) -> Response {
        let context: TLSClientContext
        do {
            context = try TLSClientContext(caFile: caFile)
        } catch {
            throw .unreachable(url: base, reason: "\(error)")
        }
        var headers: [(String, String)] = []
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        if body != nil { headers.append(("Content-Type", contentType)) }
        let response: HTTPClient.Response
        do {
            response = try HTTPClient(tls: context).send(
                method, url, headers: headers, body: body.map { Array($0) } ?? [])
        } catch {
            throw .unreachable(url: base, reason: error.description)
        }
        var headerTable: [String: String] = [:]
        for (name, value) in response.headers { headerTable[name] = value }
        return try Self.accepted(
            Response(status: response.status, headers: headerTable, body: Data(response.body)), also: accepting)
    }

    /// The response if it is a success (or a status in `also`), else the error its status and
    /// JSON error body say.
    static func accepted(_ response: Response, also: Set<Int> = []) throws(ClientError) -> Response {
        guard (200..<300).contains(response.status) || also.contains(response.status) else {
            let (code, message) = errorBody(response.body)
            switch response.status {
            case 401: throw .unauthorized(message)
            case 403: throw .forbidden(message)
            default: throw .failed(status: response.status, code: code, message: message)
            }
        }
        return response
    }

    func json(_ path: String, query: [(String, String?)] = [], accepting: Set<Int> = []) throws(ClientError) -> (
        JSONValue, Response
    ) {
        let response = try get(path, query: query, accepting: accepting)
        do {
            return (try JSONParser.parse(Array(response.body)), response)
        } catch {
            throw .badResponse("\(error)")
        }
    }

    static func errorBody(_ body: Data) -> (String, String) {
        guard let value = try? JSONParser.parse(Array(body)), let error = value["error"] else {
            return ("error", String(decoding: body.prefix(200), as: UTF8.self))
        }
        return (error["code"]?.string ?? "error", error["message"]?.string ?? "")
    }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    private var response: HTTPURLResponse?
    private var error: (any Error)?

    func set(data: Data?, response: HTTPURLResponse?, error: (any Error)?) {
        lock.lock()
        (self.data, self.response, self.error) = (data, response, error)
        lock.unlock()
    }

    func get() -> (Data?, HTTPURLResponse?, (any Error)?) {
        lock.lock()
        defer { lock.unlock() }
        return (data, response, error)
    }
}
