import Crypto
public import JSON
public import MQTT
public import Settings

extension UpstreamForwarder {
    /// The `upstream` section of gatewayd's file, read straight into this type
    /// (`Configuration.section`): the city broker's nodes, the link's TLS, its pace and the
    /// outbox's bound. The link is on when there is at least one node.
    public struct Configuration: Sendable {
        /// One node of the city's broker cluster.
        public struct Node: Sendable, Equatable, CustomStringConvertible {
            public var host: String
            public var port: Int64
            public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

            public init(host: String, port: Int64) {
                self.host = host
                self.port = port
            }
        }

        /// The city broker's nodes, tried in this order (`upstream.hosts`, or the one node of
        /// `upstream.host`).
        public var nodes: [Node] = []
        public var port: Int64 = 8883
        /// The backoff cap once every node refused: short, so that the link is back within
        /// seconds of the cluster, where the local broker's 30 s would leave it idle.
        public var reconnectMaxS: Int64 = 5
        /// How long a node may take to accept (TLS and CONNACK) before the next one is tried.
        public var connectTimeoutS: Int64 = 5
        public var clientID: String?
        public var topicPrefix = "city"
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var allowInsecure = false
        /// The outbox's bound: past it the oldest unsent messages are dropped, and counted.
        public var maxBacklogBytes: Int64 = 256 * 1024 * 1024
        public var maxRateMsgsPerS: Int64 = 200
        public var statusIntervalS: Int64 = 60
        public var keepAliveSeconds: Int64 = 30
        /// Messages published and not yet acknowledged, at most.
        public var window = 64

        public var enabled: Bool { !nodes.isEmpty }

        public init() {}

        /// A connection to the city's nodes with this section's TLS, pace and timeouts; the
        /// forwarder's and fleet OTA's (`clientID` tells them apart).
        public func mqtt(clientID: String) -> MQTTClient.Configuration {
            var mqtt = MQTTClient.Configuration(clientID: clientID)
            mqtt.brokers = nodes.map { .init(host: $0.host, port: Int($0.port)) }
            mqtt.reconnectMaxMs = Int(reconnectMaxS) * 1000
            mqtt.connackTimeoutMs = Int(connectTimeoutS) * 1000
            mqtt.keepAliveSeconds = Int32(keepAliveSeconds)
            if let caFile {
                mqtt.tls = .init(caFile: caFile, certFile: certFile, keyFile: keyFile)
            }
            return mqtt
        }
    }
}

extension UpstreamForwarder.Configuration {
    /// The `upstream` section's keys, in the order `--print-default-config` prints them.
    public static let section = ConfigSection<Self>([
        // Read after `port` (their default port) by `readNodes`, with `host`.
        .custom("hosts", read: { _, _, _, _ in }, write: { .array($0.nodes.map { .string($0.description) }) }),
        .integer("port", \.port, range: 1...65535),
        .integer("reconnect_max_s", \.reconnectMaxS, range: 1...300),
        .integer("connect_timeout_s", \.connectTimeoutS, range: 1...120),
        .optionalText("client_id", \.clientID), .text("topic_prefix", \.topicPrefix),
        .group(
            "tls",
            [
                .optionalText("ca_file", \.caFile), .optionalText("cert_file", \.certFile),
                .optionalText("key_file", \.keyFile),
            ]
        ),
        .flag("allow_insecure", \.allowInsecure),
        .integer("max_backlog_bytes", \.maxBacklogBytes, range: 65_536...1_099_511_627_776),
        .integer("max_rate_msgs_per_s", \.maxRateMsgsPerS, range: 1...100_000),
        .integer("status_interval_s", \.statusIntervalS, range: 1...86_400),
        .integer("keepalive_s", \.keepAliveSeconds, range: 5...3600),
    ])

    /// Reads the `upstream` object of `root`, with the checks that span its keys: mutual TLS
    /// unless `allow_insecure`, and the client certificate's own checks.
    public static func read(_ root: JSONObject, into upstream: inout Self, reader: inout ConfigReader) {
        let object = section.read(
            root, "upstream", path: "upstream", into: &upstream, reader: &reader, alsoKnown: ["host"])
        upstream.nodes = readNodes(object, defaultPort: upstream.port, reader: &reader)
        if upstream.topicPrefix.isEmpty || upstream.topicPrefix.contains(where: { "+#".contains($0) })
            || upstream.topicPrefix.hasPrefix("/") || upstream.topicPrefix.hasSuffix("/")
        {
            reader.problem(
                "upstream.topic_prefix", "must be a plain topic prefix without + # or a leading or trailing /")
        }
        guard upstream.enabled else { return }
        let tlsComplete = upstream.caFile != nil && upstream.certFile != nil && upstream.keyFile != nil
        if !tlsComplete && !upstream.allowInsecure {
            reader.problem(
                "upstream.tls",
                "the upstream link requires mutual TLS: set ca_file, cert_file and key_file "
                    + "(bash Deploy/make-certs.sh DIR makes development ones), or set upstream.allow_insecure to true")
        }
        if let caFile = upstream.caFile {
            if upstream.certFile == nil || upstream.keyFile == nil {
                reader.problem(
                    "upstream.tls",
                    "cert_file and key_file are required with ca_file: the gateway authenticates with a client certificate"
                )
            }
            reader.checkReadable([
                ("upstream.tls.ca_file", upstream.caFile), ("upstream.tls.cert_file", upstream.certFile),
                ("upstream.tls.key_file", upstream.keyFile),
            ])
            let check = CertificateCheck.run(caFile: caFile, certFile: upstream.certFile, keyFile: upstream.keyFile)
            for finding in check.findings where finding.severity == .error {
                reader.problem("upstream.tls", finding.description)
            }
        }
    }

    /// `upstream.host` (one node) or `upstream.hosts` (a list of "host" or "host:port", an IPv6
    /// address in brackets), never both.
    static func readNodes(_ object: JSONObject?, defaultPort: Int64, reader: inout ConfigReader) -> [Node] {
        if let host = reader.string(object, "host", path: "upstream.host", default: nil) {
            if object?["hosts"] != nil, object?["hosts"] != .null {
                reader.problem("upstream.hosts", "set upstream.host (one node) or upstream.hosts (a list), not both")
            }
            guard !host.isEmpty else {
                reader.problem("upstream.host", "must not be empty")
                return []
            }
            return [Node(host: host, port: defaultPort)]
        }
        guard let raw = object?["hosts"], raw != .null else { return [] }
        guard case .array(let entries) = raw else {
            reader.problem("upstream.hosts", "must be a list of \"host\" or \"host:port\" strings, got \(raw.typeName)")
            return []
        }
        var nodes: [Node] = []
        for (position, entry) in entries.enumerated() {
            let path = "upstream.hosts[\(position)]"
            guard case .string(let text) = entry else {
                reader.problem(path, "must be a string \"host\" or \"host:port\", got \(entry.typeName)")
                continue
            }
            guard let node = Node(parsing: text, defaultPort: defaultPort) else {
                reader.problem(path, "\"\(text)\" is not \"host\", \"host:port\" or \"[IPv6]:port\" (port 1 to 65535)")
                continue
            }
            if nodes.contains(node) { reader.problem(path, "\(node) is listed twice") }
            nodes.append(node)
        }
        return nodes
    }
}

extension UpstreamForwarder.Configuration.Node {
    /// "host", "host:port" or "[IPv6]:port"; nil when the text is none of them.
    public init?(parsing text: String, defaultPort: Int64) {
        var host = Substring(text)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = Int64(rest.dropFirst()) else { return nil }
                port = number
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard host.firstIndex(of: ":") == colon, let number = Int64(host[host.index(after: colon)...]) else {
                return nil
            }
            port = number
            host = host[..<colon]
        }
        guard !host.isEmpty, (1...65535).contains(port),
            !host.contains(where: { $0 == " " || $0 == "/" || $0 == "[" || $0 == "]" })
        else { return nil }
        self.init(host: String(host), port: port)
    }
}
