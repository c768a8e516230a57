import Crypto
public import JSON
public import Settings

extension APIConfiguration {
    /// The `http` section's keys, in the order `--print-default-config` prints them.
    public static let section = ConfigSection<Self>([
        .flag("enabled", \.enabled), .text("listen", \.listen),
        .custom(
            "tokens",
            read: { reader, object, _, section in section.tokens = readTokens(object?["tokens"], reader: &reader) },
            write: { tokensJSON($0.tokens, redacted: false) }),
        .flag("open_health", \.openHealth), .flag("open_metrics", \.openMetrics),
        .custom(
            "cors_origins",
            read: { reader, object, _, section in
                section.corsOrigins = readOrigins(object?["cors_origins"], reader: &reader)
            },
            write: { .array($0.corsOrigins.map(JSONValue.string)) }),
        .group("tls", [.optionalText("cert_file", \.tlsCertFile), .optionalText("key_file", \.tlsKeyFile)]),
        .integer("max_connections", \.maxConnections, range: 1...10_000),
        .integer("header_timeout_ms", \.headerTimeoutMs, range: 100...600_000),
        .integer("idle_timeout_ms", \.idleTimeoutMs, range: 100...3_600_000),
        .integer("max_series_points", \.maxSeriesPoints, range: 10...1_000_000),
        .integer("online_after_s", \.onlineAfterS, range: 1...86_400 * 30),
        .integer("series_cache_ms", \.seriesCacheMs, range: 0...60_000),
    ])

    /// Reads the `http` object of `root`, with the checks that span its keys.
    public static func read(_ root: JSONObject, into http: inout APIConfiguration, reader: inout ConfigReader) {
        section.read(root, "http", path: "http", into: &http, reader: &reader)
        if !http.listen.contains(":") || http.listen.hasSuffix(":") {
            reader.problem("http.listen", "must be host:port such as 127.0.0.1:8080 or [::1]:8080")
        }
        if (http.tlsCertFile == nil) != (http.tlsKeyFile == nil) {
            reader.problem("http.tls", "set both cert_file and key_file, or neither")
        }
        if http.enabled {
            reader.checkReadable([("http.tls.cert_file", http.tlsCertFile), ("http.tls.key_file", http.tlsKeyFile)])
        }
    }

    /// The section as JSON; `redacted` leaves the token hashes out (what `GET /v1/config` shows).
    public func settingsJSON(redacted: Bool) -> JSONValue {
        var object = Self.section.json(self)
        if redacted { object["tokens"] = Self.tokensJSON(tokens, redacted: true) }
        return .object(object)
    }

    private static func readOrigins(_ value: JSONValue?, reader: inout ConfigReader) -> [String] {
        guard let origins = value, origins != .null else { return [] }
        guard case .array(let values) = origins else {
            reader.problem("http.cors_origins", "must be an array of origins, got \(origins.typeName)")
            return []
        }
        var result: [String] = []
        for (index, value) in values.enumerated() {
            guard case .string(let origin) = value, origin.hasPrefix("http://") || origin.hasPrefix("https://") else {
                reader.problem("http.cors_origins[\(index)]", "must be an origin such as https://grafana.example")
                continue
            }
            result.append(origin)
        }
        return result
    }

    private static func readTokens(_ value: JSONValue?, reader: inout ConfigReader) -> [APIToken] {
        guard let tokens = value, tokens != .null else { return [] }
        guard case .array(let entries) = tokens else {
            reader.problem("http.tokens", "must be an array of {name, role, sha256}, got \(tokens.typeName)")
            return []
        }
        var result: [APIToken] = []
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
                result.append(APIToken(name: name, role: role, sha256: bytes, scopes: scopes))
            }
        }
        return result
    }

    private static func tokensJSON(_ tokens: [APIToken], redacted: Bool) -> JSONValue {
        .array(
            tokens.map { token in
                var entry = JSONObject([
                    ("name", .string(token.name)), ("role", .string(token.role.rawValue)),
                    ("scopes", .array(token.scopes.map(\.rawValue).sorted().map(JSONValue.string))),
                ])
                if !redacted { entry["sha256"] = .string(Hex.encode(token.sha256)) }
                return .object(entry)
            })
    }
}
