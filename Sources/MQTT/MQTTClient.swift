import CMosquitto
public import Lifecycle
public import Logging
import Synchronization
import Threads

#if canImport(Glibc)
    import Glibc
#endif

/// An MQTT client over libmosquitto that owns its network thread.
///
/// Why its own thread rather than `mosquitto_loop_start`: reconnects need jitter and a
/// stop that interrupts a backoff sleep, neither of which libmosquitto's loop offers.
/// Inbound messages go to `inbound`; publishes complete when the broker acknowledges them
/// (PUBACK for QoS 1), matched by message id.
///
/// Note for anyone counting on delivery: for QoS 1, libmosquitto sends PUBACK *before* it
/// calls the message callback, so a message in `inbound` (or anywhere before the consumer's
/// durable commit) is lost if the process is killed. Consumers keep that window short.
public final class MQTTClient: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<Void, MQTTError>) -> Void

    public let configuration: Configuration
    public let inbound: InboundBuffer
    let logger: Logger
    /// Safe to share: libmosquitto is built thread-safe and `mosquitto_threaded_set` is on;
    /// the handle is created in init and destroyed in deinit after the thread is joined.
    private let handle: OpaquePointer
    private let context: CallbackContext
    private let stopping = Atomic<Bool>(false)
    private let brokerIndex = Atomic<Int>(0)
    private let failoverCount = Atomic<Int>(0)
    private let wake = ConditionLock()
    private var thread: pthread_t?

    private static let libraryInitialised: Bool = {
        mosquitto_lib_init()
        return true
    }()

    public init(configuration: Configuration, logger: Logger) throws(MQTTError) {
        _ = Self.libraryInitialised
        guard !configuration.brokers.isEmpty else { throw .configuration("no broker address given") }
        self.configuration = configuration
        self.logger = logger.with("component", "mqtt").with("mqtt.client_id", configuration.clientID)
        inbound = InboundBuffer(capacity: configuration.inboundCapacity)
        context = CallbackContext(
            inbound: inbound, subscriptions: configuration.subscriptions, birth: configuration.birth,
            maxPayload: configuration.maxInboundPayloadBytes, logger: self.logger)
        guard
            let mosq = mosquitto_new(
                configuration.clientID, configuration.cleanSession, Unmanaged.passUnretained(context).toOpaque())
        else {
            throw .configuration("mosquitto_new failed for client id \(configuration.clientID) (errno \(errno))")
        }
        handle = mosq
        do throws(MQTTError) {
            try configure()
        } catch {
            mosquitto_destroy(mosq)
            throw error
        }
    }

    deinit {
        stop()
        mosquitto_destroy(handle)
    }

    private func check(_ rc: Int32, _ operation: String) throws(MQTTError) {
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw .library(operation: operation, code: rc) }
    }

    private func configure() throws(MQTTError) {
        try check(mosquitto_threaded_set(handle, true), "mosquitto_threaded_set")
        try check(
            mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, Int32(MQTT_PROTOCOL_V311)), "protocol version")
        // Without it, a small publish right after another (a level state, then the advisories it
        // caused) waits for the broker's delayed ACK: ~40 ms per packet (Nagle's algorithm).
        try check(mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1), "TCP_NODELAY")
        try check(mosquitto_max_inflight_messages_set(handle, configuration.maxInflightMessages), "max inflight")
        if configuration.username != nil || configuration.password != nil {
            try check(
                mosquitto_username_pw_set(handle, configuration.username, configuration.password), "username/password")
        }
        if let tls = configuration.tls {
            let rc = mosquitto_tls_set(handle, tls.caFile, nil, tls.certFile, tls.keyFile, nil)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw .configuration(
                    "TLS setup failed (\(String(cString: mosquitto_strerror(rc)))): check that ca_file \(tls.caFile)"
                        + " and cert_file/key_file exist, are readable and match")
            }
            // Verify the server certificate and its host name; never turned off here.
            try check(mosquitto_tls_opts_set(handle, 1, "tlsv1.2", nil), "TLS options")
            try check(mosquitto_tls_insecure_set(handle, false), "TLS hostname verification")
        }
        if let will = configuration.will {
            let rc = will.payload.withUnsafeBytes { raw in
                mosquitto_will_set(handle, will.topic, Int32(raw.count), raw.baseAddress, will.qos, will.retain)
            }
            try check(rc, "will")
        }
        mosquitto_connect_callback_set(handle, onConnect)
        mosquitto_disconnect_callback_set(handle, onDisconnect)
        mosquitto_message_callback_set(handle, onMessage)
        mosquitto_publish_callback_set(handle, onPublish)
        // libmosquitto formats every line it could log (two a received QoS 1 message) whenever
        // a log callback is set, whatever its level: 300 instructions a reading under callgrind.
        // Its warnings and errors worth a log line are OpenSSL's, so only TLS links get one;
        // a plain link's failures come back as return codes, which are logged with their cause.
        if configuration.tls != nil { mosquitto_log_callback_set(handle, onLog) }
    }

    /// True between a successful CONNACK and the next disconnect.
    public var isConnected: Bool { context.connected.load(ordering: .acquiring) }
    /// CONNACKs that refused the connection (bad credentials, not authorised): the evidence that
    /// a broker turned a client away, as opposed to not having answered yet.
    public var connectRefusals: Int { context.refusals.load(ordering: .relaxed) }

    /// The node the client is connected to, or trying next.
    public var currentBroker: Configuration.Endpoint { configuration.brokers[brokerIndex.load(ordering: .relaxed)] }
    /// Moves to another node of `configuration.brokers` after a lost or refused connection.
    public var failovers: Int { failoverCount.load(ordering: .relaxed) }

    /// Starts the network thread, which connects and keeps reconnecting until `stop`.
    public func start() {
        guard thread == nil else { return }
        let box = Unmanaged.passRetained(self)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        var created = pthread_t()
        let rc = pthread_create(
            &created, &attributes,
            { raw in
                let client = Unmanaged<MQTTClient>.fromOpaque(raw!).takeRetainedValue()
                client.runLoop()
                return nil
            }, box.toOpaque())
        pthread_attr_destroy(&attributes)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = created
    }

    /// Disconnects cleanly, stops the thread, then closes the inbound buffer (queued messages
    /// can still be drained). Pending publish completions fail with `.stopped`.
    ///
    /// The order matters: until the network thread has exited, libmosquitto may still
    /// acknowledge a message and hand it over, so the buffer must stay open to take it (the
    /// consumer keeps draining meanwhile); closing it first would drop an acknowledged message.
    public func stop() {
        if let will = configuration.will, isConnected, !stopping.load(ordering: .acquiring) {
            publishFarewell(will)
        }
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.withLock { wake.broadcast() }
        if let thread {
            mosquitto_disconnect(handle)
            pthread_join(thread, nil)
            self.thread = nil
        }
        inbound.close()
        context.failAllPending(.stopped)
    }

    /// On a clean stop the broker does not send the will, so send its content ourselves and
    /// wait (briefly) for the broker to take it.
    private func publishFarewell(_ will: Configuration.Will) {
        let done = ConditionLock()
        let acknowledged = Atomic<Bool>(false)
        do {
            try publish(topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain) { _ in
                done.withLock {
                    acknowledged.store(true, ordering: .releasing)
                    done.broadcast()
                }
            }
        } catch {
            logger.warning("mqtt_farewell_failed", [("error", error.description)])
            return
        }
        let deadline = monotonicNanos() + 2_000_000_000
        done.withLock {
            while !acknowledged.load(ordering: .acquiring) && monotonicNanos() < deadline {
                done.wait(untilMonotonicNanos: deadline)
            }
        }
    }

    private func runLoop() {
        var backoff = Backoff(
            initialMs: configuration.reconnectInitialMs, maxMs: configuration.reconnectMaxMs,
            jitter: configuration.reconnectJitter)
        let brokers = configuration.brokers
        var index = 0
        // Nodes that were unreachable or refused us since the last accepted connection: the
        // backoff starts only when every node has had its turn.
        var refusedInARow = 0
        var socketOpen = false
        var openedAt: UInt64 = 0
        let connackTimeoutNanos = UInt64(max(1, configuration.connackTimeoutMs)) * 1_000_000
        while !stopping.load(ordering: .acquiring) {
            if !socketOpen {
                let broker = brokers[index]
                // Blocks for the TCP connect only: libmosquitto then makes the socket non-blocking,
                // and the TLS handshake and CONNACK happen in the loop below, under the timeout.
                let rc = mosquitto_connect(handle, broker.host, Int32(broker.port), configuration.keepAliveSeconds)
                if rc == MOSQ_ERR_SUCCESS.rawValue {
                    socketOpen = true
                    openedAt = monotonicNanos()
                    context.acceptedOnThisSocket.store(false, ordering: .relaxed)
                } else {
                    let delay = moveOn(from: &index, accepted: false, refusedInARow: &refusedInARow, backoff: &backoff)
                    logger.warning(
                        "mqtt_connect_failed",
                        [
                            ("mqtt.broker", broker.description),
                            ("error", MQTTError.library(operation: "connect", code: rc).description),
                            ("next_broker", brokers[index].description), ("retry_in_ms", String(delay)),
                        ])
                    sleep(milliseconds: delay)
                    continue
                }
            }
            let rc = mosquitto_loop(handle, 100, 1)
            if context.connected.load(ordering: .relaxed) {
                backoff.reset()
                refusedInARow = 0
            }
            // A node that took the connection but does not answer CONNECT (busy electing a
            // leader, half dead) would otherwise hold the client until the keep-alive expires.
            if rc == MOSQ_ERR_SUCCESS.rawValue, !context.acceptedOnThisSocket.load(ordering: .relaxed),
                monotonicNanos() - openedAt > connackTimeoutNanos
            {
                mosquitto_disconnect(handle)
                socketOpen = false
                let broker = brokers[index]
                let delay = moveOn(from: &index, accepted: false, refusedInARow: &refusedInARow, backoff: &backoff)
                logger.warning(
                    "mqtt_connect_failed",
                    [
                        ("mqtt.broker", broker.description),
                        ("error", "no CONNACK within \(configuration.connackTimeoutMs) ms"),
                        ("next_broker", brokers[index].description), ("retry_in_ms", String(delay)),
                    ])
                sleep(milliseconds: delay)
                continue
            }
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                socketOpen = false
                context.connected.store(false, ordering: .releasing)
                if stopping.load(ordering: .acquiring) { break }
                // Refused before CONNACK (TLS verification, bad credentials) or lost afterwards.
                let accepted = context.acceptedOnThisSocket.load(ordering: .relaxed)
                let broker = brokers[index]
                let delay = moveOn(from: &index, accepted: accepted, refusedInARow: &refusedInARow, backoff: &backoff)
                logger.warning(
                    accepted ? "mqtt_connection_lost" : "mqtt_connect_failed",
                    [
                        ("mqtt.broker", broker.description),
                        ("error", MQTTError.library(operation: "network loop", code: rc).description),
                        ("next_broker", brokers[index].description), ("retry_in_ms", String(delay)),
                    ])
                sleep(milliseconds: delay)
            }
        }
        // Flush the DISCONNECT written by stop().
        _ = mosquitto_loop(handle, 10, 1)
        context.connected.store(false, ordering: .releasing)
    }

    /// After a failure on `brokers[index]`: the next node, and how long to wait before trying
    /// it. A connection that had been accepted and then lost goes to the next node at once;
    /// refusals count, and once every node refused in a row the capped backoff applies.
    private func moveOn(from index: inout Int, accepted: Bool, refusedInARow: inout Int, backoff: inout Backoff) -> Int
    {
        let count = configuration.brokers.count
        if count > 1 {
            index = (index + 1) % count
            failoverCount.add(1, ordering: .relaxed)
            brokerIndex.store(index, ordering: .relaxed)
        }
        if accepted {
            refusedInARow = 0
            return 0
        }
        refusedInARow += 1
        guard refusedInARow >= count else { return 0 }
        refusedInARow = 0
        return backoff.next()
    }

    private func sleep(milliseconds: Int) {
        let deadline = monotonicNanos() + UInt64(milliseconds) * 1_000_000
        wake.withLock {
            while !stopping.load(ordering: .acquiring) && monotonicNanos() < deadline {
                wake.wait(untilMonotonicNanos: deadline)
            }
        }
    }

    /// Publishes; `completion` runs on the network thread when the broker has acknowledged
    /// (QoS 1) or the message was written (QoS 0). Keep it short.
    @discardableResult
    public func publish(
        topic: String, payload: some Collection<UInt8>, qos: Int32 = 1, retain: Bool = false,
        completion: Completion? = nil
    ) throws(MQTTError) -> Int32 {
        guard !stopping.load(ordering: .acquiring) else { throw .stopped }
        var mid: Int32 = 0
        let rc: Int32 =
            payload.withContiguousStorageIfAvailable { buffer in
                mosquitto_publish(handle, &mid, topic, Int32(buffer.count), buffer.baseAddress, qos, retain)
            }
            ?? Array(payload).withUnsafeBufferPointer { buffer in
                mosquitto_publish(handle, &mid, topic, Int32(buffer.count), buffer.baseAddress, qos, retain)
            }
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw .library(operation: "publish to \(topic)", code: rc) }
        if let completion { context.register(mid: mid, completion: completion) }
        return mid
    }

    /// Publishes and waits for the acknowledgement.
    public func publishAndWait(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = false) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            do {
                try publish(topic: topic, payload: payload, qos: qos, retain: retain) { result in
                    continuation.resume(with: result)
                }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

}

/// What the C callbacks reach through libmosquitto's `obj` pointer. Lives as long as the client.
final class CallbackContext: @unchecked Sendable {
    let inbound: InboundBuffer
    let subscriptions: [(filter: String, qos: Int32)]
    let birth: MQTTClient.Configuration.Will?
    let maxPayload: Int
    let logger: Logger
    let connected = Atomic<Bool>(false)
    let acceptedOnThisSocket = Atomic<Bool>(false)
    let connections = Atomic<Int>(0)
    let refusals = Atomic<Int>(0)
    private let pending = Mutex(PendingPublishes())

    struct PendingPublishes {
        var completions: [Int32: MQTTClient.Completion] = [:]
        /// Acknowledgements that arrived before the publisher registered its completion.
        var early: Set<Int32> = []
    }

    init(
        inbound: InboundBuffer, subscriptions: [(filter: String, qos: Int32)], birth: MQTTClient.Configuration.Will?,
        maxPayload: Int, logger: Logger
    ) {
        self.inbound = inbound
        self.subscriptions = subscriptions
        self.birth = birth
        self.maxPayload = maxPayload
        self.logger = logger
    }

    func register(mid: Int32, completion: @escaping MQTTClient.Completion) {
        let alreadyAcked = pending.withLock { state in
            if state.early.remove(mid) != nil { return true }
            state.completions[mid] = completion
            return false
        }
        if alreadyAcked { completion(.success(())) }
    }

    func acknowledge(mid: Int32) {
        let completion = pending.withLock { state -> MQTTClient.Completion? in
            if let completion = state.completions.removeValue(forKey: mid) { return completion }
            state.early.insert(mid)
            if state.early.count > 100_000 { state.early.removeAll() }
            return nil
        }
        completion?(.success(()))
    }

    func failAllPending(_ error: MQTTError) {
        let all = pending.withLock { state in
            let all = state.completions
            state.completions.removeAll()
            state.early.removeAll()
            return all
        }
        for completion in all.values { completion(.failure(error)) }
    }

}

private func context(_ obj: UnsafeMutableRawPointer?) -> CallbackContext {
    Unmanaged<CallbackContext>.fromOpaque(obj!).takeUnretainedValue()
}

private func onConnect(_ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ rc: Int32) {
    let context = context(obj)
    guard rc == 0 else {
        context.refusals.add(1, ordering: .relaxed)
        context.logger.error("mqtt_connect_refused", [("error", MQTTError.refused(code: rc).description)])
        return
    }
    context.connected.store(true, ordering: .releasing)
    context.acceptedOnThisSocket.store(true, ordering: .relaxed)
    let count = context.connections.add(1, ordering: .relaxed).newValue
    context.logger.info("mqtt_connected", [("connection", String(count))])
    for subscription in context.subscriptions {
        let result = mosquitto_subscribe(mosq, nil, subscription.filter, subscription.qos)
        if result != MOSQ_ERR_SUCCESS.rawValue {
            context.logger.error(
                "mqtt_subscribe_failed",
                [
                    ("filter", subscription.filter),
                    ("error", MQTTError.library(operation: "subscribe", code: result).description),
                ])
        }
    }
    if let birth = context.birth {
        let result = birth.payload.withUnsafeBytes { raw in
            mosquitto_publish(mosq, nil, birth.topic, Int32(raw.count), raw.baseAddress, birth.qos, birth.retain)
        }
        if result != MOSQ_ERR_SUCCESS.rawValue {
            context.logger.warning(
                "mqtt_birth_failed",
                [("error", MQTTError.library(operation: "publish birth", code: result).description)])
        }
    }
}

private func onDisconnect(_ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ rc: Int32) {
    let context = context(obj)
    context.connected.store(false, ordering: .releasing)
    if rc != 0 { context.logger.warning("mqtt_disconnected", [("rc", String(rc))]) }
}

/// libmosquitto's own diagnostics (the reason behind "A TLS error occurred", for instance);
/// only errors and warnings, which are rare, so this costs nothing on the message path.
private func onLog(
    _ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ level: Int32, _ text: UnsafePointer<CChar>?
) {
    guard level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING) != 0, let text else { return }
    context(obj).logger.warning("mqtt_library", [("message", String(cString: text))])
}

private func onPublish(_ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ mid: Int32) {
    context(obj).acknowledge(mid: mid)
}

private func onMessage(
    _ mosq: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ message: UnsafePointer<mosquitto_message>?
) {
    guard let message = message?.pointee else { return }
    let context = context(obj)
    let wireLength = Int(message.payloadlen)
    let keep = wireLength > context.maxPayload ? min(256, wireLength) : wireLength
    let payload: [UInt8]
    if keep > 0, let bytes = message.payload {
        payload = Array(UnsafeRawBufferPointer(start: bytes, count: keep))
    } else {
        payload = []
    }
    let inboundMessage = InboundMessage(
        topic: message.topic.map { String(cString: $0) } ?? "",
        payload: payload,
        wireLength: wireLength,
        qos: message.qos,
        retained: message.retain,
        receivedAtNanos: monotonicNanos())
    if !context.inbound.push(inboundMessage) {
        // Cannot happen while stop() closes the buffer only after this thread has exited;
        // if it ever does, it must not pass unseen.
        context.logger.critical(
            "acknowledged_message_dropped", [("mqtt.topic", String(inboundMessage.topic.prefix(128)))])
    }
}

extension MQTTClient: Service {
    public var serviceName: String { "mqtt \(configuration.clientID)" }
}
