public import Crypto
import Dispatch
public import JSON
public import Lifecycle
public import Logging
public import MQTT
public import OTA
import Synchronization
public import Telemetry
import Threads

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The gateway's side of OTA: blobs and manifests uploaded through the REST API, campaigns
/// planned by `CampaignPlanner`, offers and commands published, block requests served.
///
/// Threads: a control thread drains the OTA MQTT connection (status reports and block
/// requests) and ticks the planner each second; a `BlockSender` thread moves the bytes. The
/// planner, the SQLite store and the offered-file table sit behind one lock; OTA control
/// traffic is small, so that lock is never on a per-byte path.
public final class OTAService: @unchecked Sendable {
    /// The `ota` section of gatewayd's file, read straight into this type
    /// (`Configuration.section`). Where the files go and which broker to use are not in it:
    /// they come from the store's and the broker's sections, as `init`'s arguments.
    public struct Configuration: Sendable {
        public var enabled = true
        /// nil: `ota` beside the store file.
        public var directory: String?
        /// The operators' keys: a manifest needs `signatureThreshold` of them.
        public var trustedKeys: [Ed25519.PublicKey] = []
        public var signatureThreshold = 1
        public var blockSize = 16 * 1024
        public var maxBlobBytes: Int64 = 512 * 1024 * 1024
        /// 0: unlimited.
        public var maxBytesPerSecond = 0
        public var maxConcurrentTransfers = 50
        /// Take releases and signed orders from the city broker (fleet OTA). Off by default: the
        /// city broker must first let this gateway read `{prefix}-ota/` (Deploy/city).
        public var fleet = false
        /// The fleet depot's keys: a tally counts only when one of them signed it.
        public var fleetTallyKeys: [Ed25519.PublicKey] = []
        /// Publishes handed to libmosquitto and not yet written to the socket.
        public var maxUnwrittenBlocks = 64
        public var maxQueuedRequests = 4096

        public init() {}
    }

    /// The file a vehicle was offered, to check and serve its block requests.
    struct Transfer {
        var campaign: UInt32
        var file: OfferedFile
    }

    struct Core {
        var planner: CampaignPlanner
        let store: CampaignStore
        var offered: [VIN: Transfer] = [:]
        var manifests: [Int64: SignedManifest] = [:]
        var readers: [String: BlobReader] = [:]
    }

    public let configuration: Configuration
    /// Blobs go to `directory/blobs`, metadata to `directory/ota.db`.
    public let directory: String
    public let metrics = OTAMetrics()
    public let blobs: BlobStore
    let policy: TrustPolicy
    let logger: Logger
    let client: MQTTClient
    let core: Mutex<Core>
    let sender: BlockSender
    let gate = ServeGate()
    let uploads = Mutex(())
    private let runObserver = Mutex<(@Sendable (UInt32, VehicleRun) -> Void)?>(nil)
    private let stopping = Atomic<Bool>(false)
    private var started = false
    private let finished = DispatchSemaphore(value: 0)

    /// `mqtt` is the device broker's connection settings, for a connection of the service's own.
    public init(configuration: Configuration, directory: String, mqtt: MQTTClient.Configuration, logger: Logger) throws
    {
        self.configuration = configuration
        self.directory = directory
        self.logger = logger.with("component", "ota")
        policy = TrustPolicy(keys: configuration.trustedKeys, threshold: configuration.signatureThreshold)
        blobs = try BlobStore(directory: directory + "/blobs", maxLength: UInt64(configuration.maxBlobBytes))
        let store = try CampaignStore(path: directory + "/ota.db")
        var planner = CampaignPlanner(maxConcurrentTransfers: configuration.maxConcurrentTransfers)
        planner.load(inventory: try store.inventory())
        var manifests: [Int64: SignedManifest] = [:]
        for (campaign, runs) in try store.campaigns() {
            guard let record = try store.manifest(id: campaign.manifestID) else { continue }
            // Parsed again but not verified again: the gateway checked it at upload, and each
            // vehicle checks it itself, which is the check that matters.
            guard let signed = try? SignedManifest(bytes: Array(record.text.utf8)) else {
                self.logger.error(
                    "ota_manifest_unreadable", [("campaign", String(campaign.id)), ("manifest.id", String(record.id))])
                continue
            }
            manifests[record.id] = signed
            planner.add(campaign: campaign, release: Self.releaseInfo(signed.manifest), runs: runs)
        }
        var mqtt = mqtt
        mqtt.subscriptions = [(filter: "v1/ota/+/status", qos: 1), (filter: "v1/ota/+/get", qos: 0)]
        mqtt.maxInboundPayloadBytes = 4096
        client = try MQTTClient(configuration: mqtt, logger: self.logger)
        core = Mutex(Core(planner: planner, store: store, manifests: manifests))
        for (id, entry) in planner.entries where entry.campaign.state == .running || entry.campaign.state == .scheduled
        {
            gate.campaign(id, running: true)
        }
        sender = BlockSender(
            client: client, metrics: metrics, gate: gate, logger: self.logger,
            maxQueued: configuration.maxQueuedRequests,
            maxUnwritten: configuration.maxUnwrittenBlocks, bytesPerSecond: configuration.maxBytesPerSecond)
    }

    /// Called with every vehicle state once the store has it, on the thread that saved it:
    /// the fleet link reports a fleet campaign's vehicles upstream from here. Keep it short.
    public func observeRuns(_ observer: @escaping @Sendable (UInt32, VehicleRun) -> Void) {
        runObserver.withLock { $0 = observer }
    }

    /// Forgets a vehicle (erasure): in the file first, then in memory, so a failure leaves
    /// nothing forgotten that the file still has. Returns how many records went.
    public func forget(vin: VIN) throws -> Int {
        let removed = try core.withLock { core throws -> Int in
            let removed = try core.store.forget(vin: vin)
            _ = core.planner.forget(vin: vin)
            core.offered.removeValue(forKey: vin)
            return removed
        }
        gate.withdrawn(vin)
        return removed
    }

    static func releaseInfo(_ manifest: ReleaseManifest) -> ReleaseInfo {
        ReleaseInfo(
            hardwareID: manifest.hardwareID, counter: manifest.releaseCounter, sha256: manifest.sha256,
            deltaBases: Set(manifest.deltas.map(\.fromSHA256)))
    }

    public func start() {
        client.start()
        sender.start(blockSize: configuration.blockSize)
        // Offers of vehicles in flight are published again: retained messages survive in the
        // broker, but the table of offered files lives in memory.
        let actions = core.withLock { core -> [PlannerAction] in
            var actions: [PlannerAction] = []
            for (id, entry) in core.planner.entries where !entry.campaign.state.isFinal {
                for run in entry.runs where run.isActive {
                    if let file = run.file { actions.append(.offer(campaign: id, vin: run.vin, file: file)) }
                }
            }
            return actions
        }
        perform(actions)
        started = DetachedThread.start(name: "ota-control") { [self] in
            run()
            finished.signal()
        }
        precondition(started, "cannot create the OTA control thread")
    }

    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        client.stop()
        if started { _ = finished.wait(timeout: .now() + .seconds(5)) }
        sender.stop()
    }

    public var isConnected: Bool { client.isConnected }

    // MARK: - Control thread

    private func run() {
        var batch: [InboundMessage] = []
        var nextTick = monotonicNanos()
        while !stopping.load(ordering: .acquiring) {
            batch.removeAll(keepingCapacity: true)
            _ = client.inbound.drain(
                into: &batch, max: 256, deadlineNanos: min(nextTick, monotonicNanos() + 200_000_000))
            for message in batch { handle(message) }
            if monotonicNanos() >= nextTick {
                nextTick = monotonicNanos() + 1_000_000_000
                tick()
            }
        }
    }

    func tick() {
        let now = Self.nowMs()
        let minute = Self.localMinuteOfDay()
        let actions = core.withLock { core in core.planner.tick(nowMs: now, minuteOfDay: minute) }
        perform(actions)
    }

    private func handle(_ message: InboundMessage) {
        guard let (vin, kind) = OTATopic.parse(message.topic), !message.isTruncated else {
            OTAMetrics.add(metrics.malformedMessages)
            return
        }
        switch kind {
        case .status:
            do {
                let report = try VehicleReport(bytes: message.payload)
                OTAMetrics.add(metrics.reports)
                let now = Self.nowMs()
                let actions = core.withLock { core in core.planner.report(vin: vin, report, nowMs: now) }
                perform(actions)
                // A vehicle that finished frees a transfer slot (or completes a wave): offer at once
                // rather than at the next second's tick.
                if actions.contains(where: { if case .clearOffer = $0 { true } else { false } }) { tick() }
            } catch {
                reject(vin: vin, kind: kind, error.description)
            }
        case .get:
            do {
                let request = try BlockRequest(bytes: message.payload)
                serve(vin: vin, request)
            } catch {
                reject(vin: vin, kind: kind, error.description)
            }
        default:
            OTAMetrics.add(metrics.malformedMessages)
        }
    }

    private func reject(vin: VIN, kind: OTATopic, _ detail: String) {
        OTAMetrics.add(metrics.malformedMessages)
        logger.warning("ota_message_rejected", [("vin", vin.value), ("topic", kind.name), ("detail", detail)])
    }

    private func serve(vin: VIN, _ request: BlockRequest) {
        let now = Self.nowMs()
        let (job, actions) = core.withLock { core -> (BlockJob?, [PlannerAction]) in
            guard let transfer = core.offered[vin], transfer.campaign == request.campaign,
                transfer.file.kind == request.file
            else { return (nil, []) }
            let (serve, actions) = core.planner.blockRequest(
                vin: vin, campaign: request.campaign, file: request.file, nowMs: now)
            guard serve, let reader = Self.reader(&core, blobs: blobs, sha256: transfer.file.sha256) else {
                return (nil, actions)
            }
            return (
                BlockJob(
                    vin: vin, topic: OTATopic.topic(.data, vin: vin), reader: reader, file: transfer.file,
                    campaign: request.campaign, blocks: request.blocks), actions
            )
        }
        perform(actions)
        if let job { _ = sender.enqueue(job) } else { OTAMetrics.add(metrics.requestsRefused) }
    }

    private static func reader(_ core: inout Core, blobs: BlobStore, sha256: String) -> BlobReader? {
        if let reader = core.readers[sha256] { return reader }
        guard let reader = blobs.openForReading(sha256) else { return nil }
        core.readers[sha256] = reader
        return reader
    }

    /// Stores the planner's writes, then publishes its offers and commands.
    func perform(_ actions: [PlannerAction]) {
        guard !actions.isEmpty else { return }
        var publishes: [(topic: String, payload: [UInt8], retain: Bool)] = []
        core.withLock { core in
            do {
                try core.store.apply(actions)
            } catch {
                logger.error("ota_store_failed", [("error", "\(error)")])
            }
            for action in actions {
                switch action {
                case .offer(let id, let vin, let kind):
                    guard let entry = core.planner.entries[id], let signed = core.manifests[entry.campaign.manifestID]
                    else { continue }
                    let release = signed.manifest
                    var file = OfferedFile(
                        kind: .full, sha256: release.sha256, length: release.length, blockSize: configuration.blockSize)
                    if kind == .delta, let installed = core.planner.inventory[vin],
                        let delta = release.delta(from: installed.sha256)
                    {
                        file = OfferedFile(
                            kind: .delta, sha256: delta.patchSHA256, length: delta.patchLength,
                            blockSize: configuration.blockSize)
                    } else if kind == .delta {
                        core.planner.recordOfferedFile(campaign: id, vin: vin, file: .full)
                    }
                    core.offered[vin] = Transfer(campaign: id, file: file)
                    gate.offered(vin, campaign: id)
                    let offer = Offer(campaign: id, manifest: signed, file: file)
                    publishes.append((OTATopic.topic(.offer, vin: vin), Array(offer.json.serialized().utf8), true))
                    OTAMetrics.add(metrics.offersPublished)
                case .clearOffer(let vin):
                    core.offered[vin] = nil
                    gate.withdrawn(vin)
                    publishes.append((OTATopic.topic(.offer, vin: vin), [], true))
                case .command(let vin, let campaign, let verb):
                    publishes.append(
                        (OTATopic.topic(.cmd, vin: vin), OTACommand(campaign: campaign, verb: verb).bytes, false))
                case .saveCampaign(let campaign):
                    gate.campaign(campaign.id, running: campaign.state == .running || campaign.state == .scheduled)
                    logger.info(
                        "ota_campaign_state",
                        [
                            ("campaign", String(campaign.id)), ("state", campaign.state.rawValue),
                            ("wave", String(campaign.wave + 1)), ("reason", campaign.reason ?? ""),
                        ])
                case .saveRun(let campaign, let run) where run.state.isTerminal:
                    logger.info(
                        "ota_vehicle_finished",
                        [
                            ("campaign", String(campaign)), ("vin", run.vin.value), ("state", run.state.rawValue),
                            ("reason", run.reason ?? ""), ("attempts", String(run.attempts)),
                        ])
                default:
                    break
                }
            }
        }
        if let observer = runObserver.withLock({ $0 }) {
            for case .saveRun(let campaign, let run) in actions { observer(campaign, run) }
        }
        for publish in publishes {
            do {
                try client.publish(topic: publish.topic, payload: publish.payload, qos: 1, retain: publish.retain)
            } catch {
                OTAMetrics.add(metrics.publishErrors)
                logger.warning("ota_publish_failed", [("mqtt.topic", publish.topic), ("error", error.description)])
            }
        }
    }

    // MARK: - Clock

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Minutes since local midnight (TZ), for install windows.
    static func localMinuteOfDay() -> Int {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return Int(parts.tm_hour) * 60 + Int(parts.tm_min)
    }
}

extension OTAService: Service {
    public var serviceName: String { "ota" }
}
