public import Crypto
import Dispatch
public import JSON
public import Logging
public import MQTT
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The operator's depot on the city side (`gwctl ota fleet serve`): answers gateways' fetch
/// requests with chunks of the blobs it holds, and records every gateway's reports (release
/// held, vehicle states, refusals) for `gwctl ota status --city`.
///
/// It holds no secret that matters: a gateway verifies the signed manifest and every blob's
/// SHA-256 itself, so a depot (or a broker) that serves wrong bytes only makes a fetch fail.
public final class FleetDepot: @unchecked Sendable {
    public struct Counters: Sendable {
        public var requests: Int64 = 0
        public var refused: Int64 = 0
        public var chunks: Int64 = 0
        public var bytes: Int64 = 0
        public var reports: Int64 = 0
        public var duplicateReports: Int64 = 0
    }

    public let topics: FleetTopics
    private let store: DepotStore
    private let client: MQTTClient
    private let logger: Logger
    private let counters = Mutex(Counters())
    /// Campaigns whose reports changed since their last tally, and their plans.
    private var dirty: Set<String> = []
    private var plans: [String: DepotStore.Plan] = [:]
    /// Campaigns still running in the fleet: their tally is sent again every 30 s, for a
    /// gateway that restarted or started its part late.
    private var running: Set<String> = []
    private var nextRepeat: UInt64 = 0

    /// `mqtt` is the depot's own account on the city broker (may publish `{prefix}-ota/…`, may
    /// read fetch requests and reports); a persistent session keeps requests made while it was down.
    private let tallyKey: Ed25519.PrivateKey

    /// `tallyKey` signs the tallies; gateways list its public half in `ota.fleet_tally_keys`.
    public init(
        store: DepotStore, prefix: String, mqtt: MQTTClient.Configuration, tallyKey: Ed25519.PrivateKey, logger: Logger
    ) throws {
        self.store = store
        self.tallyKey = tallyKey
        topics = FleetTopics(prefix: prefix)
        self.logger = logger.with("component", "depot")
        var configuration = mqtt
        configuration.cleanSession = false
        configuration.subscriptions = [(topics.fetchFilter, 1), (topics.reportFilter, 1)]
        configuration.maxInboundPayloadBytes = 64 * 1024
        client = try MQTTClient(configuration: configuration, logger: self.logger)
    }

    public var snapshot: Counters { counters.withLock { $0 } }
    public var isConnected: Bool { client.isConnected }

    /// Serves until `stop` says so; checked at least every 200 ms.
    public func run(stop: () -> Bool) {
        client.start()
        var batch: [InboundMessage] = []
        var wasConnected = false
        var nextTally = monotonicNanos()
        while !stop() {
            if monotonicNanos() >= nextTally, client.isConnected {
                nextTally = monotonicNanos() + 1_000_000_000
                publishTallies()
            }
            batch.removeAll(keepingCapacity: true)
            _ = client.inbound.drain(into: &batch, max: 64, deadlineNanos: monotonicNanos() + 200_000_000)
            if client.isConnected != wasConnected {
                wasConnected.toggle()
                logger.info(wasConnected ? "depot_connected" : "depot_disconnected", [])
            }
            for message in batch { handle(message) }
        }
        client.stop()
    }

    private func handle(_ message: InboundMessage) {
        guard let (gateway, isFetch) = topics.sender(of: message.topic), !message.isTruncated else {
            logger.warning(
                "depot_message_refused", [("mqtt.topic", message.topic), ("detail", "unknown topic or too large")])
            counters.withLock { $0.refused += 1 }
            return
        }
        if isFetch { serve(gateway, message.payload) } else { record(gateway, message.payload) }
    }

    private func serve(_ gateway: String, _ payload: [UInt8]) {
        let request: FetchRequest
        do { request = try FetchRequest(bytes: payload) } catch {
            refuse(gateway, "malformed fetch request: \(error)")
            return
        }
        let path = store.blobPath(request.sha256)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            refuse(gateway, "no blob \(request.sha256) in the depot; gwctl ota fleet push puts it there")
            return
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, request.offset < UInt64(info.st_size) else {
            refuse(gateway, "offset \(request.offset) is past the end of \(request.sha256)")
            return
        }
        let total = UInt64(info.st_size)
        let end = min(total, request.offset + request.length)
        guard let hash = Hex.decodeSHA(request.sha256) else { return }
        var offset = request.offset
        var buffer = [UInt8](repeating: 0, count: BlobChunk.maxBytes)
        var sent: Int64 = 0
        while offset < end {
            let count = Int(min(UInt64(BlobChunk.maxBytes), end - offset))
            let read = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            guard read == count else {
                refuse(gateway, "reading \(path) at \(offset) failed")
                return
            }
            let chunk = BlobChunk(sha256: hash, offset: offset, total: total, bytes: Array(buffer[0..<count]))
            do {
                try client.publish(topic: topics.chunks(to: gateway), payload: chunk.encoded, qos: 1)
            } catch {
                logger.warning("depot_publish_failed", [("gateway", gateway), ("error", error.description)])
                break
            }
            offset += UInt64(count)
            sent += Int64(count)
        }
        counters.withLock {
            $0.requests += 1
            $0.chunks += (sent + Int64(BlobChunk.maxBytes) - 1) / Int64(BlobChunk.maxBytes)
            $0.bytes += sent
        }
        do { try store.served(gateway: gateway, sha256: request.sha256, bytes: sent) } catch {
            logger.error("depot_store_failed", [("error", "\(error)")])
        }
        logger.debug(
            "depot_served",
            [
                ("gateway", gateway), ("blob.sha256", request.sha256), ("offset", String(request.offset)),
                ("bytes", String(sent)),
            ])
    }

    private func record(_ gateway: String, _ payload: [UInt8]) {
        guard let body = (try? JSONParser.parse(payload))?.object, case .int? = body["report_id"],
            body["type"]?.string != nil
        else {
            refuse(gateway, "a report is a JSON object with report_id and type")
            return
        }
        // The broker acknowledged this report before it reached us: a failed write is retried,
        // and only a file that stays unwritable loses it (logged with the report itself).
        var attempt = 0
        while true {
            do {
                let fresh = try store.record(
                    report: body, gateway: gateway, text: String(decoding: payload, as: UTF8.self),
                    nowMs: Int64(Date().timeIntervalSince1970 * 1000))
                counters.withLock { counters in
                    if fresh { counters.reports += 1 } else { counters.duplicateReports += 1 }
                }
                if fresh, body["type"]?.string == "vehicle", let campaign = body["campaign"]?.string {
                    dirty.insert(campaign)
                }
                if fresh, body["type"]?.string == "refusal" {
                    logger.warning(
                        "depot_gateway_refused",
                        [
                            ("gateway", gateway), ("code", body["code"]?.string ?? ""),
                            ("campaign", body["campaign"]?.string ?? ""), ("detail", body["detail"]?.string ?? ""),
                        ])
                }
                return
            } catch {
                attempt += 1
                guard attempt < 20 else {
                    logger.error(
                        "depot_report_lost",
                        [
                            ("gateway", gateway), ("error", "\(error)"),
                            ("report", String(decoding: payload, as: UTF8.self)),
                        ])
                    return
                }
                usleep(UInt32(50_000 * attempt))
            }
        }
    }

    /// One tally per campaign whose vehicles changed, at most once a second.
    private func publishTallies() {
        if monotonicNanos() >= nextRepeat {
            nextRepeat = monotonicNanos() + 30_000_000_000
            dirty.formUnion(running)
        }
        for campaign in dirty.sorted() {
            do {
                if plans[campaign] == nil { plans[campaign] = try store.plan(campaign: campaign) }
                guard let plan = plans[campaign] else { continue }
                let tally = try store.tally(campaign: campaign, plan: plan)
                let message = TallyMessage(
                    campaign: campaign, tally: tally, tsMs: Int64(Date().timeIntervalSince1970 * 1000)
                ).signed(with: [tallyKey])
                try client.publish(topic: topics.tallies, payload: message.bytes, qos: 1)
                dirty.remove(campaign)
                if tally.targets == 0 || tally.terminal < tally.targets {
                    running.insert(campaign)
                } else {
                    running.remove(campaign)
                }
                logger.info(
                    "depot_tally",
                    [
                        ("campaign", campaign), ("targets", String(tally.targets)),
                        ("installed", String(tally.installed)),
                        ("failures", String(tally.failures)), ("terminal", String(tally.terminal)),
                    ])
            } catch {
                logger.warning("depot_tally_failed", [("campaign", campaign), ("error", "\(error)")])
            }
        }
    }

    private func refuse(_ gateway: String, _ detail: String) {
        counters.withLock { $0.refused += 1 }
        logger.warning("depot_request_refused", [("gateway", gateway), ("detail", detail)])
    }
}

/// One connection that publishes a few messages and waits for each acknowledgement: what
/// `gwctl ota fleet` uses to announce releases and orders.
public final class FleetPublisher {
    private let client: MQTTClient

    public init(mqtt: MQTTClient.Configuration, logger: Logger) throws {
        var configuration = mqtt
        configuration.cleanSession = true
        client = try MQTTClient(configuration: configuration, logger: logger)
        client.start()
    }

    deinit { client.stop() }

    /// Throws when the broker did not acknowledge within `seconds`.
    public func publish(topic: String, payload: [UInt8], seconds: Int = 30) throws(FleetPublishError) {
        let deadline = monotonicNanos() + UInt64(seconds) * 1_000_000_000
        while !client.isConnected {
            guard monotonicNanos() < deadline else { throw .notConnected(client.currentBroker.description) }
            usleep(20_000)
        }
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<Void, MQTTError>?>(nil)
        do {
            try client.publish(topic: topic, payload: payload, qos: 1) { result in
                outcome.withLock { $0 = result }
                done.signal()
            }
        } catch {
            throw .failed(topic, error.description)
        }
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { throw .notAcknowledged(topic) }
        if case .failure(let error)? = outcome.withLock({ $0 }) { throw .failed(topic, error.description) }
    }
}

public enum FleetPublishError: Error, CustomStringConvertible {
    case notConnected(String)
    case notAcknowledged(String)
    case failed(String, String)

    public var description: String {
        switch self {
        case .notConnected(let broker):
            "no connection to the city broker (\(broker)): check --city, the certificate and the broker's log"
        case .notAcknowledged(let topic):
            "the city broker did not acknowledge \(topic): is this certificate allowed to publish there?"
        case .failed(let topic, let detail): "publishing \(topic) failed: \(detail)"
        }
    }
}

extension Hex {
    static func decodeSHA(_ text: String) -> [UInt8]? {
        guard let bytes = decode(text), bytes.count == 32 else { return nil }
        return bytes
    }
}
