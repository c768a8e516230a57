/// A request's method, target and headers: everything known before its body is read.
///
/// The path is already percent-decoded and checked (no `..`, no NUL, valid UTF-8), so
/// routes can match on it without re-validating.
public struct RequestHead: Sendable {
    public var method: String
    /// The raw request target, as sent.
    public var target: String
    /// Decoded path segments (`/v1/devices/abc` → `["v1", "devices", "abc"]`).
    public var segments: [String]
    public var query: [(name: String, value: String)]
    public var version: HTTPVersion
    public var headers: HTTPHeaders

    public var path: String { "/" + segments.joined(separator: "/") }

    /// The first value of a query parameter.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// Whether the connection stays open after this exchange (HTTP/1.1 default, 1.0 opt-in).
    public var keepAlive: Bool {
        let connection = headers.tokens("connection")
        if connection.contains("close") { return false }
        if version == .http10 { return connection.contains("keep-alive") }
        return true
    }
}

public enum HTTPVersion: Sendable, Equatable {
    case http10
    case http11

    public var text: String { self == .http10 ? "HTTP/1.0" : "HTTP/1.1" }
}

/// Header fields in arrival order; names are stored lowercased.
public struct HTTPHeaders: Sendable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(_ fields: [(String, String)]) {
        for (name, value) in fields { add(name, value) }
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name.lowercased(), value))
    }

    /// Replaces every field of this name.
    public mutating func set(_ name: String, _ value: String) {
        let lower = name.lowercased()
        fields.removeAll { $0.name == lower }
        fields.append((lower, value))
    }

    public subscript(_ name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name == lower }?.value
    }

    public func values(_ name: String) -> [String] {
        let lower = name.lowercased()
        return fields.filter { $0.name == lower }.map(\.value)
    }

    /// Comma-separated list values, lowercased and trimmed (`Connection`, `Transfer-Encoding`).
    public func tokens(_ name: String) -> [String] {
        values(name).flatMap { $0.split(separator: ",") }.map {
            $0.trimmingSpaces().lowercased()
        }
    }

    public var count: Int { fields.count }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
}

/// A complete request: head and body (already de-chunked).
public struct HTTPRequest: Sendable {
    public var head: RequestHead
    public var body: [UInt8]
    /// The peer's address, for logs.
    public var peer: String

    public var method: String { head.method }
    public var segments: [String] { head.segments }
    public var headers: HTTPHeaders { head.headers }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}
