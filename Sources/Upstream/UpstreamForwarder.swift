import Crypto
import Dispatch
public import JSON
public import Lifecycle
public import Logging
public import MQTT
public import RingStore
public import Synchronization
import Threads
import Version

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Store-and-forward to the city's broker: reads the outbox in order (alerts first), publishes
/// with QoS 1 under a rate limit, and deletes a message only once the upstream broker has
/// acknowledged it. Its own thread, MQTT connection and SQLite connection.
///
/// Delivery is at least once: a message acknowledged upstream but not yet deleted when
/// gatewayd dies is sent again after the restart; `batch_id` and `alert_id` let the receiver
/// drop the copy.
public final class UpstreamForwarder: @unchecked Sendable {
    private let configuration: Configuration
    private let gatewayID: String
    private let client: MQTTClient
    private let outbox: OutboxReader
    private let gauge: OutboxGauge
    private let logger: Logger
    private let healthJSON: @Sendable () -> [(String, JSONValue)]
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(true)
    private let acked = Mutex<[(id: Int64, bytes: Int64)]>([])
    public let secondsToCertificateExpiry = Atomic<Int64>(Int64.min)
    public let sent = Atomic<Int64>(0)

    public init(
        configuration: Configuration, gatewayID: String, client: MQTTClient, outbox: OutboxReader, gauge: OutboxGauge,
        logger: Logger, health: @escaping @Sendable () -> [(String, JSONValue)]
    ) {
        self.configuration = configuration
        self.gatewayID = gatewayID
        self.client = client
        self.outbox = outbox
        self.gauge = gauge
        self.logger = logger.with("component", "upstream")
        self.healthJSON = health
    }

    public var isConnected: Bool { client.isConnected }
    /// The city broker node the link is on, or trying next.
    public var node: String { client.currentBroker.description }
    public var failovers: Int { client.failovers }

    /// Seconds until the client certificate expires, as of the last check; nil before one.
    public var certificateExpirySeconds: Int64? {
        let seconds = secondsToCertificateExpiry.load(ordering: .relaxed)
        return seconds == Int64.min ? nil : seconds
    }

    public func start() {
        client.start()
        let started = DetachedThread.start(name: "upstream") { [self] in
            run()
            finished.signal()
        }
        precondition(started, "cannot create the upstream thread")
    }

    /// New messages are in the outbox: send now rather than at the next poll.
    public func notify() {
        wake.signal()
    }

    public func stop() {
        running.store(false, ordering: .relaxed)
        wake.signal()
        finished.wait()
        client.stop()
        applyAcknowledgements()
    }

    private func run() {
        var inFlight: [Int64: Int64] = [:]
        let maxRatePerSecond = Double(configuration.maxRateMsgsPerS)
        var tokens = maxRatePerSecond
        var lastRefill = monotonicNanos()
        var nextStatus: UInt64 = 0
        var nextCheck: UInt64 = monotonicNanos() + 3_600_000_000_000
        var wasConnected = false
        while running.load(ordering: .relaxed) {
            for (id, _) in applyAcknowledgements() { inFlight.removeValue(forKey: id) }
            let now = monotonicNanos()
            if now >= nextCheck {
                nextCheck = now + 3_600_000_000_000
                checkCertificates()
            }
            let connected = client.isConnected
            if connected != wasConnected {
                wasConnected = connected
                logger.info(
                    connected ? "upstream_connected" : "upstream_disconnected",
                    [("node", client.currentBroker.description), ("failovers", String(client.failovers))])
            }
            guard connected else {
                _ = wake.wait(timeout: .now() + .milliseconds(100))
                continue
            }
            if now >= nextStatus {
                nextStatus = now + UInt64(configuration.statusIntervalS) * 1_000_000_000
                publishStatus()
            }
            tokens = min(
                maxRatePerSecond,
                tokens + Double(now - lastRefill) / 1e9 * maxRatePerSecond)
            lastRefill = now
            let room = min(configuration.window - inFlight.count, Int(tokens))
            if room > 0 {
                do {
                    let rows = try outbox.next(limit: room, skipping: Set(inFlight.keys))
                    for row in rows {
                        let bytes = Int64(row.payload.count)
                        let id = row.id
                        try client.publish(
                            topic: "\(configuration.topicPrefix)/\(gatewayID)/\(row.topic)",
                            payload: row.payload,
                            qos: 1
                        ) { [self] result in
                            if case .success = result {
                                acked.withLock { $0.append((id, bytes)) }
                                sent.add(1, ordering: .relaxed)
                            }
                        }
                        inFlight[id] = bytes
                        tokens -= 1
                    }
                    if !rows.isEmpty { continue }
                } catch {
                    logger.warning("upstream_send_failed", [("error", "\(error)")])
                }
            }
            // Out of tokens: sleep until the next one. Otherwise until a new message (notify),
            // an acknowledgement to apply, or a poll.
            let waitMs: Int
            if tokens < 1 {
                waitMs = max(1, Int(((1 - tokens) / maxRatePerSecond * 1000).rounded(.up)))
            } else {
                waitMs = inFlight.isEmpty ? 200 : 5
            }
            _ = wake.wait(timeout: .now() + .milliseconds(waitMs))
        }
    }

    /// Deletes what upstream acknowledged; returns those rows.
    @discardableResult
    private func applyAcknowledgements() -> [(id: Int64, bytes: Int64)] {
        let rows = acked.withLock { rows -> [(id: Int64, bytes: Int64)] in
            defer { rows.removeAll() }
            return rows
        }
        guard !rows.isEmpty else { return [] }
        do {
            try outbox.delete(rows)
        } catch {
            // They were delivered; they will be sent again and de-duplicated upstream.
            logger.error("outbox_delete_failed", [("error", error.description), ("messages", String(rows.count))])
        }
        return rows
    }

    private func publishStatus() {
        var object = JSONObject([
            ("state", .string("online")), ("gateway_id", .string(gatewayID)),
            ("version", .string(GatewayVersion.current)), ("ts_ms", .int(wallClockMs())),
            ("backlog_messages", .int(gauge.backlogMessages)), ("backlog_bytes", .int(gauge.backlogBytes)),
        ])
        for (key, value) in healthJSON() { object[key] = value }
        let expiry = secondsToCertificateExpiry.load(ordering: .relaxed)
        if expiry != .min { object["cert_seconds_to_expiry"] = .int(expiry) }
        do {
            try client.publish(
                topic: "\(configuration.topicPrefix)/\(gatewayID)/status",
                payload: Array(JSONValue.object(object).serialized().utf8), qos: 1, retain: true)
        } catch {
            logger.warning("upstream_status_failed", [("error", error.description)])
        }
    }

    /// The hourly security check of the TLS material; findings are logged with what to do.
    public func checkCertificates() {
        guard let caFile = configuration.caFile else { return }
        let result = CertificateCheck.run(
            caFile: caFile, certFile: configuration.certFile, keyFile: configuration.keyFile)
        if let seconds = result.secondsToExpiry { secondsToCertificateExpiry.store(seconds, ordering: .relaxed) }
        for finding in result.findings {
            logger.log(
                finding.severity == .error ? .error : .warning, "tls_check",
                [("file", finding.file), ("problem", finding.message)])
        }
    }
}

extension UpstreamForwarder: Service {
    public var serviceName: String { "upstream" }
}
