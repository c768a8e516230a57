public import API
import Crypto
import JSON

/// The `http` section: the REST API's listener, tokens and limits.
public struct HTTPSettings: Sendable {
    public var enabled = true
    public var listen = "127.0.0.1:8080"
    public var tokens: [APIToken] = []
    public var openHealth = true
    public var openMetrics = true
    public var corsOrigins: [String] = []
    public var certFile: String?
    public var keyFile: String?
    public var maxConnections: Int64 = 256
    public var headerTimeoutMs: Int64 = 10_000
    public var idleTimeoutMs: Int64 = 60_000
    public var maxSeriesPoints: Int64 = 10_000
    public var onlineAfterS: Int64 = 300
    public var seriesCacheMs: Int64 = 1_000

    static let keys = [
        "enabled", "listen", "tokens", "open_health", "open_metrics", "cors_origins", "tls", "max_connections",
        "header_timeout_ms", "idle_timeout_ms", "max_series_points", "online_after_s", "series_cache_ms",
    ]

    static func parse(_ root: JSONObject, into http: inout HTTPSettings, reader: inout ConfigReader) {
        let object = reader.object(root, "http", path: "http", known: keys)
        http.enabled = reader.boolean(object, "enabled", path: "http.enabled", default: true)
        http.listen = reader.string(object, "listen", path: "http.listen", default: http.listen)!
        if !http.listen.contains(":") || http.listen.hasSuffix(":") {
            reader.problem("http.listen", "must be host:port such as 127.0.0.1:8080 or [::1]:8080")
        }
        http.openHealth = reader.boolean(object, "open_health", path: "http.open_health", default: true)
        http.openMetrics = reader.boolean(object, "open_metrics", path: "http.open_metrics", default: true)
        http.maxConnections = reader.integer(
            object, "max_connections", path: "http.max_connections", default: 256, range: 1...10_000)
        http.headerTimeoutMs = reader.integer(
            object, "header_timeout_ms", path: "http.header_timeout_ms", default: 10_000, range: 100...600_000)
        http.idleTimeoutMs = reader.integer(
            object, "idle_timeout_ms", path: "http.idle_timeout_ms", default: 60_000, range: 100...3_600_000)
        http.maxSeriesPoints = reader.integer(
            object, "max_series_points", path: "http.max_series_points", default: 10_000, range: 10...1_000_000)
        http.onlineAfterS = reader.integer(
            object, "online_after_s", path: "http.online_after_s", default: 300, range: 1...86_400 * 30)
        http.seriesCacheMs = reader.integer(
            object, "series_cache_ms", path: "http.series_cache_ms", default: 1_000, range: 0...60_000)
        let tls = reader.object(object, "tls", path: "http.tls", known: ["cert_file", "key_file"])
        http.certFile = reader.string(tls, "cert_file", path: "http.tls.cert_file", default: nil)
        http.keyFile = reader.string(tls, "key_file", path: "http.tls.key_file", default: nil)
        if (http.certFile == nil) != (http.keyFile == nil) {
            reader.problem("http.tls", "set both cert_file and key_file, or neither")
        }
        if http.enabled {
            reader.checkReadable([("http.tls.cert_file", http.certFile), ("http.tls.key_file", http.keyFile)])
        }
        if let origins = object?["cors_origins"], origins != .null {
            if case .array(let values) = origins {
                for (index, value) in values.enumerated() {
                    guard case .string(let origin) = value, origin.hasPrefix("http://") || origin.hasPrefix("https://")
                    else {
                        reader.problem(
                            "http.cors_origins[\(index)]", "must be an origin such as https://grafana.example")
                        continue
                    }
                    http.corsOrigins.append(origin)
                }
            } else {
                reader.problem("http.cors_origins", "must be an array of origins, got \(origins.typeName)")
            }
        }
        guard let tokens = object?["tokens"], tokens != .null else { return }
        guard case .array(let entries) = tokens else {
            reader.problem("http.tokens", "must be an array of {name, role, sha256}, got \(tokens.typeName)")
            return
        }
        var names = Set<String>()
        for (index, entry) in entries.enumerated() {
            let path = "http.tokens[\(index)]"
            guard case .object(let token) = entry else {
                reader.problem(path, "must be an object {name, role, sha256}, got \(entry.typeName)")
                continue
            }
            reader.checkUnknownKeys(token, path: path, known: ["name", "role", "sha256", "scopes"])
            let name = reader.string(token, "name", path: "\(path).name", default: nil) ?? ""
            if name.isEmpty || name.utf8.count > 64 { reader.problem("\(path).name", "must be 1 to 64 characters") }
            if !names.insert(name).inserted { reader.problem("\(path).name", "\"\(name)\" is used twice") }
            let roleText = reader.choice(
                token, "role", path: "\(path).role", default: "", allowed: Role.allCases.map(\.rawValue))
            let hash = reader.string(token, "sha256", path: "\(path).sha256", default: nil) ?? ""
            let bytes = Hex.decode(hash)
            if bytes?.count != 32 {
                reader.problem(
                    "\(path).sha256", "must be the 64 hex digits of the token's SHA-256 (gwctl token new prints it)")
            }
            guard let role = Role(rawValue: roleText) else {
                if roleText.isEmpty { reader.problem("\(path).role", "is required: viewer or operator") }
                continue
            }
            var scopes: Set<Scope> = []
            if let raw = token["scopes"], raw != .null {
                let allowed = Scope.allCases.map(\.rawValue).joined(separator: ", ")
                if case .array(let values) = raw {
                    for (position, value) in values.enumerated() {
                        guard let scope = value.string.flatMap(Scope.init(rawValue:)) else {
                            reader.problem("\(path).scopes[\(position)]", "must be one of: \(allowed)")
                            continue
                        }
                        scopes.insert(scope)
                    }
                } else {
                    reader.problem("\(path).scopes", "must be a list of scopes (\(allowed)), got \(raw.typeName)")
                }
            }
            if let bytes, bytes.count == 32 {
                http.tokens.append(APIToken(name: name, role: role, sha256: bytes, scopes: scopes))
            }
        }
    }

    func json(redacted: Bool) -> JSONValue {
        func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
        return .object(
            JSONObject([
                ("enabled", .bool(enabled)), ("listen", .string(listen)),
                (
                    "tokens",
                    .array(
                        tokens.map { token in
                            var entry = JSONObject([
                                ("name", .string(token.name)), ("role", .string(token.role.rawValue)),
                                ("scopes", .array(token.scopes.map(\.rawValue).sorted().map(JSONValue.string))),
                            ])
                            if !redacted { entry["sha256"] = .string(Hex.encode(token.sha256)) }
                            return .object(entry)
                        })
                ),
                ("open_health", .bool(openHealth)), ("open_metrics", .bool(openMetrics)),
                ("cors_origins", .array(corsOrigins.map(JSONValue.string))),
                ("tls", .object(JSONObject([("cert_file", optional(certFile)), ("key_file", optional(keyFile))]))),
                ("max_connections", .int(maxConnections)), ("header_timeout_ms", .int(headerTimeoutMs)),
                ("idle_timeout_ms", .int(idleTimeoutMs)), ("max_series_points", .int(maxSeriesPoints)),
                ("online_after_s", .int(onlineAfterS)), ("series_cache_ms", .int(seriesCacheMs)),
            ]))
    }
}
