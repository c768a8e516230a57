extension MQTTClient {
    public struct Configuration: Sendable {
        public struct TLS: Sendable {
            public var caFile: String
            public var certFile: String?
            public var keyFile: String?
            public init(caFile: String, certFile: String? = nil, keyFile: String? = nil) {
                self.caFile = caFile
                self.certFile = certFile
                self.keyFile = keyFile
            }
        }

        public struct Will: Sendable {
            public var topic: String
            public var payload: [UInt8]
            public var qos: Int32
            public var retain: Bool
            public init(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = true) {
                self.topic = topic
                self.payload = payload
                self.qos = qos
                self.retain = retain
            }
        }

        /// One broker node: a host name or address and its port.
        public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
            public var host: String
            public var port: Int
            public init(host: String, port: Int) {
                self.host = host
                self.port = port
            }
            public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
        }

        /// The nodes of one broker service, tried in order. A lost connection moves to the next
        /// node at once; the backoff applies only after every node refused in a row, so a
        /// cluster that loses one node costs the time of one TLS handshake, not a backoff.
        /// Each node gets the same TLS checks (certificate chain and host name).
        public var brokers = [Endpoint(host: "127.0.0.1", port: 1883)]
        /// The first node: the one-broker form.
        public var host: String {
            get { brokers[0].host }
            set { brokers[0].host = newValue }
        }
        public var port: Int {
            get { brokers[0].port }
            set { brokers[0].port = newValue }
        }
        public var clientID: String
        public var username: String?
        public var password: String?
        public var tls: TLS?
        /// False keeps a persistent session: the broker queues QoS 1 messages while we are away.
        public var cleanSession = false
        public var keepAliveSeconds: Int32 = 30
        /// How long a connection may wait for the broker's CONNACK before it counts as refused
        /// and the next node is tried.
        public var connackTimeoutMs = 10_000
        /// Reconnect backoff: starts here, doubles, capped, with ±jitter so a fleet of
        /// gateways that lost the same broker does not reconnect in lockstep.
        public var reconnectInitialMs = 250
        public var reconnectMaxMs = 30_000
        public var reconnectJitter = 0.2
        /// Published by the broker if the connection drops without a DISCONNECT; the client
        /// also publishes it itself on a clean `stop()`, so the topic always ends in this state.
        public var will: Will?
        /// Published (retained, typically) on every successful connect: the opposite of `will`.
        public var birth: Will?
        public var subscriptions: [(filter: String, qos: Int32)] = []
        /// Messages buffered between libmosquitto's thread and the consumer.
        public var inboundCapacity = 8192
        /// Larger payloads are truncated to their first 256 bytes on arrival (and are then
        /// refused by the consumer): a hostile device cannot make the gateway copy megabytes.
        public var maxInboundPayloadBytes = 16 * 1024
        /// QoS 1/2 messages in flight towards the broker.
        public var maxInflightMessages: UInt32 = 100

        public init(clientID: String) {
            self.clientID = clientID
        }
    }

    /// Capped exponential backoff with jitter; a pure value so it is tested without sockets.
    public struct Backoff: Sendable {
        public let initialMs: Int
        public let maxMs: Int
        public let jitter: Double
        public private(set) var attempt = 0

        public init(initialMs: Int, maxMs: Int, jitter: Double) {
            self.initialMs = max(1, initialMs)
            self.maxMs = max(self.initialMs, maxMs)
            self.jitter = min(max(jitter, 0), 1)
        }

        /// The next delay; `random` is a number in 0..<1 (injected for tests).
        public mutating func next(random: Double = Double.random(in: 0..<1)) -> Int {
            let exponent = min(attempt, 30)
            attempt += 1
            let base = min(Double(maxMs), Double(initialMs) * pow2(exponent))
            let spread = base * jitter
            let delay = base - spread + 2 * spread * random
            return max(1, min(maxMs, Int(delay)))
        }

        public mutating func reset() { attempt = 0 }

        private func pow2(_ n: Int) -> Double { Double(UInt64(1) << UInt64(n)) }
    }
}
