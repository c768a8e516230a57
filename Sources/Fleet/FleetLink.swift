public import Campaigns
public import Crypto
import Dispatch
import JSON
public import Lifecycle
public import Logging
public import MQTT
import OTA
import Synchronization
import Telemetry
import Threads

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A gateway's end of fleet OTA: releases and signed orders arrive from the city broker, blobs
/// are fetched from the operator's depot over the same link, and the gateway's own OTA service
/// runs the campaign for the vehicles it sees. Reports go back upstream.
///
/// Its own MQTT connection to the city broker (client id `<upstream client id>-ota`, a
/// persistent session: the broker keeps what was announced while the board was offline), so
/// a megabyte of firmware never queues in front of an alert on the upstream link.
///
/// Nothing that arrives is trusted: manifests and orders pass the same signature threshold as
/// uploads through the REST API, orders must raise their campaign's sequence, and blobs must
/// hash to what the verified manifest signs before anything is offered.
public final class FleetLink: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var prefix: String
        public var gatewayID: String
        public var mqtt: MQTTClient.Configuration
        /// A fetch with no new chunk for this long is asked again from where the blob stands.
        public var fetchRetryMs: Int64 = 10_000

        /// The keys are the OTA service's (`ota.trusted_keys`, `ota.signature_threshold`,
        /// `ota.fleet_tally_keys`): a release from the city passes the same check as an upload.
        public init(prefix: String, gatewayID: String, mqtt: MQTTClient.Configuration) {
            self.prefix = prefix
            self.gatewayID = gatewayID
            self.mqtt = mqtt
        }
    }

    struct Fetch {
        var sha256: String
        var length: UInt64
        /// End of the range asked for, and when: a silent depot is asked again.
        var requestedEnd: UInt64 = 0
        var requestedAtMs: Int64 = 0
    }

    struct Core {
        let state: FleetState
        var releases: [String: FleetState.Release] = [:]
        var campaigns: [String: FleetState.CampaignRow] = [:]
        var byLocalID: [UInt32: String] = [:]
        var fetches: [Fetch] = []
        /// Outbox rows handed to the broker and not yet acknowledged.
        var inFlight: Set<Int64> = []
        var lastQueued: Int64 = 0
        /// What was last reported of each vehicle (state, attempts): progress within a state
        /// stays on the board, so a transfer costs a handful of reports, not one per status.
        var reported: [String: String] = [:]
        /// The newest tally per fleet campaign, kept for a campaign that starts later.
        var tallies: [String: TallyMessage] = [:]
    }

    public let configuration: Configuration
    public let topics: FleetTopics
    private let ota: OTAService
    private let policy: TrustPolicy
    private let tallyPolicy: TrustPolicy
    private let client: MQTTClient
    private let logger: Logger
    private let core: Mutex<Core>
    private let acked = Mutex<[Int64]>([])
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    public init(configuration: Configuration, ota: OTAService, logger: Logger) throws {
        self.configuration = configuration
        self.ota = ota
        self.logger = logger.with("component", "fleet")
        topics = FleetTopics(prefix: configuration.prefix)
        policy = TrustPolicy(keys: ota.configuration.trustedKeys, threshold: ota.configuration.signatureThreshold)
        tallyPolicy = TrustPolicy(keys: ota.configuration.fleetTallyKeys, threshold: 1)
        let state = try FleetState(path: ota.directory + "/fleet.db")
        var core = Core(state: state)
        for release in try state.releases() { core.releases[release.digest] = release }
        for row in try state.campaigns() {
            core.campaigns[row.name] = row
            if let id = row.localID { core.byLocalID[id] = row.name }
        }
        self.core = Mutex(core)
        ota.metrics.fleet.withLock { $0 = FleetCounters() }
        var mqtt = configuration.mqtt
        mqtt.cleanSession = false
        mqtt.subscriptions = [
            (topics.releases, 1), (topics.orders, 1), (topics.tallies, 1),
            (topics.direct(to: configuration.gatewayID), 1),
        ]
        mqtt.maxInboundPayloadBytes = BlobChunk.headerLength + BlobChunk.maxBytes
        mqtt.inboundCapacity = 256
        client = try MQTTClient(configuration: mqtt, logger: self.logger.with("link", "fleet"))
        ota.observeRuns { [weak self] campaign, run in self?.vehicleChanged(campaign: campaign, run: run) }
    }

    public var isConnected: Bool { client.isConnected }
    public var counters: FleetCounters { ota.metrics.fleet.withLock { $0 ?? FleetCounters() } }

    private func count(_ change: (inout FleetCounters) -> Void) {
        ota.metrics.fleet.withLock { counters in
            var value = counters ?? FleetCounters()
            change(&value)
            counters = value
        }
    }

    // MARK: - Thread

    private func run() {
        var batch: [InboundMessage] = []
        var nextTick = monotonicNanos()
        core.withLock { core in planFetches(&core) }
        while !stopping.load(ordering: .acquiring) {
            batch.removeAll(keepingCapacity: true)
            _ = client.inbound.drain(
                into: &batch, max: 64, deadlineNanos: min(nextTick, monotonicNanos() + 200_000_000))
            for message in batch { handle(message) }
            if monotonicNanos() >= nextTick {
                nextTick = monotonicNanos() + 1_000_000_000
                tick()
            }
        }
    }

    private func tick() {
        let done = acked.withLock { ids -> [Int64] in
            defer { ids.removeAll() }
            return ids
        }
        let backlog = core.withLock { core in
            do { try core.state.delete(done) } catch { logger.error("fleet_store_failed", [("error", "\(error)")]) }
            for id in done { core.inFlight.remove(id) }
            return core.state.backlog
        }
        let connected = client.isConnected
        count {
            $0.backlog = backlog
            $0.connected = connected
        }
        guard client.isConnected else {
            // What was in flight is sent again after the reconnect; report_id makes it harmless.
            core.withLock { $0.inFlight.removeAll() }
            return
        }
        requestMissing(nowMs: Self.nowMs())
        sendReports()
    }

    private func handle(_ message: InboundMessage) {
        if message.topic == topics.chunks(to: configuration.gatewayID) {
            chunk(message.payload)
        } else if message.isTruncated {
            refuse(topic: message.topic, digest: nil, .malformed("larger than \(message.payload.count) bytes"))
        } else if message.topic == topics.releases || message.topic == topics.releases(to: configuration.gatewayID) {
            release(message.payload)
        } else if message.topic == topics.orders || message.topic == topics.orders(to: configuration.gatewayID) {
            order(message.payload)
        } else if message.topic == topics.tallies {
            tally(message.payload)
        }
    }

    // MARK: - Releases

    private func release(_ bytes: [UInt8]) {
        let signed: SignedManifest
        do {
            signed = try SignedManifest(bytes: bytes)
            try policy.verify(signed)
        } catch {
            refuse(topic: topics.releases, digest: nil, .signature(error))
            return
        }
        let now = Self.nowMs()
        guard now / 1000 < signed.manifest.expires else {
            refuse(
                topic: topics.releases, digest: signed.digest,
                .signature(.expired(expires: signed.manifest.expires, now: now / 1000)))
            return
        }
        core.withLock { core in
            if core.releases[signed.digest] != nil {
                count { $0.duplicates += 1 }
                return
            }
            let release = FleetState.Release(digest: signed.digest, manifest: bytes, state: .fetching)
            core.releases[signed.digest] = release
            do { try core.state.save(release, nowMs: now) } catch {
                logger.error("fleet_store_failed", [("error", "\(error)")])
            }
            logger.info(
                "fleet_release_announced",
                [
                    ("manifest", signed.digest), ("name", signed.manifest.name), ("version", signed.manifest.version),
                    ("bytes", String(signed.manifest.length)),
                ])
            report(&core, Self.releaseReport(signed, state: "fetching", reason: nil, nowMs: now))
            planFetches(&core)
        }
        requestMissing(nowMs: now)
        finishReleases()
    }

    /// Lists the blobs of releases still fetching that the blob store does not hold whole.
    private func planFetches(_ core: inout Core) {
        var wanted: [Fetch] = []
        for release in core.releases.values where release.state == .fetching {
            guard let signed = try? SignedManifest(bytes: release.manifest) else { continue }
            var blobs = [(signed.manifest.sha256, signed.manifest.length)]
            for delta in signed.manifest.deltas { blobs.append((delta.patchSHA256, delta.patchLength)) }
            for (sha, length) in blobs where !wanted.contains(where: { $0.sha256 == sha }) {
                guard !((try? ota.blobs.status(sha))?.complete ?? false) else { continue }
                wanted.append(core.fetches.first { $0.sha256 == sha } ?? Fetch(sha256: sha, length: length))
            }
        }
        core.fetches = wanted
    }

    /// Asks the depot for the next range of the first blob still missing; one blob at a time,
    /// one range in flight, so a gateway's queue on the broker never holds more than a range.
    private func requestMissing(nowMs: Int64) {
        let request = core.withLock { core -> FetchRequest? in
            guard var fetch = core.fetches.first else { return nil }
            let received = (try? ota.blobs.status(fetch.sha256).received) ?? 0
            let waiting = fetch.requestedEnd > received && nowMs - fetch.requestedAtMs < configuration.fetchRetryMs
            if waiting { return nil }
            let length = min(FetchRequest.maxLength, fetch.length - received)
            guard length > 0 else { return nil }
            fetch.requestedEnd = received + length
            fetch.requestedAtMs = nowMs
            core.fetches[0] = fetch
            count { $0.fetchRequests += 1 }
            return FetchRequest(sha256: fetch.sha256, offset: received, length: length)
        }
        guard let request else { return }
        do {
            try client.publish(topic: topics.fetch(from: configuration.gatewayID), payload: request.bytes, qos: 1)
        } catch {
            logger.warning("fleet_fetch_failed", [("blob.sha256", request.sha256), ("error", error.description)])
        }
    }

    private func chunk(_ bytes: [UInt8]) {
        guard let chunk = try? BlobChunk(decoding: bytes) else {
            refuse(topic: topics.chunks(to: configuration.gatewayID), digest: nil, .malformed("not a blob chunk"))
            return
        }
        let sha = Hex.encode(chunk.sha256)
        let expected = core.withLock { core in core.fetches.first { $0.sha256 == sha }?.length }
        // A chunk of a blob not wanted, or of another length than the manifest signs, or a
        // repeat of one already written (redelivery): dropped; the fetch asks again if needed.
        guard expected == chunk.total, let status = try? ota.blobs.status(sha), chunk.offset == status.received
        else { return }
        do {
            _ = try ota.uploadBlob(sha256: sha, length: chunk.total, offset: chunk.offset, bytes: chunk.bytes)
        } catch {
            refuse(
                topic: topics.chunks(to: configuration.gatewayID), digest: nil,
                .blob(code: error.code, detail: "blob \(sha): \(error.message)"))
            guard error.code == "hash_mismatch" else {
                core.withLock { core in core.fetches.removeAll { $0.sha256 == sha } }
                failReleases(holding: sha, reason: error.code, detail: error.message)
                return
            }
            // Wrong bytes from the depot or the broker: the part is gone; fetch the blob again
            // from its start after the retry interval (never faster, whatever is sent).
            core.withLock { core in
                guard let index = core.fetches.firstIndex(where: { $0.sha256 == sha }) else { return }
                core.fetches[index].requestedEnd = .max
                core.fetches[index].requestedAtMs = Self.nowMs()
            }
            return
        }
        let end = chunk.offset + UInt64(chunk.bytes.count)
        let complete = end == chunk.total
        core.withLock { core in
            count {
                $0.chunks += 1
                $0.bytesFetched += Int64(chunk.bytes.count)
            }
            if complete { core.fetches.removeAll { $0.sha256 == sha } }
        }
        if complete {
            finishReleases()
            requestMissing(nowMs: Self.nowMs())
        } else if core.withLock({ $0.fetches.first?.requestedEnd == end }) {
            requestMissing(nowMs: Self.nowMs())
        }
    }

    /// Releases whose blobs are all whole go to the OTA service, which checks the signatures
    /// again and every blob against the manifest; then waiting campaigns start.
    private func finishReleases() {
        let ready = core.withLock { core in
            core.releases.values.filter { release in
                release.state == .fetching
                    && !core.fetches.contains { fetch in
                        (try? SignedManifest(bytes: release.manifest)).map { signed in
                            signed.manifest.sha256 == fetch.sha256
                                || signed.manifest.deltas.contains { $0.patchSHA256 == fetch.sha256 }
                        } ?? false
                    }
            }
        }
        for var release in ready {
            guard let signed = try? SignedManifest(bytes: release.manifest) else { continue }
            let now = Self.nowMs()
            do {
                let (json, _) = try ota.submitManifest(release.manifest)
                guard case .int(let id)? = json["id"] else { continue }
                release.state = .verified
                release.manifestID = id
                core.withLock { core in
                    core.releases[release.digest] = release
                    count { $0.releasesVerified += 1 }
                    do { try core.state.save(release, nowMs: now) } catch {
                        logger.error("fleet_store_failed", [("error", "\(error)")])
                    }
                    report(&core, Self.releaseReport(signed, state: "verified", reason: nil, nowMs: now))
                }
                logger.info("fleet_release_verified", [("manifest", release.digest), ("manifest.id", String(id))])
            } catch {
                if error.code == "blob_missing" {
                    core.withLock { core in planFetches(&core) }
                    continue
                }
                release.state = .refused
                core.withLock { core in
                    core.releases[release.digest] = release
                    try? core.state.save(release, nowMs: now)
                    report(&core, Self.releaseReport(signed, state: "refused", reason: error.description, nowMs: now))
                }
                refuse(topic: topics.releases, digest: release.digest, .refusedByGateway(error.description))
            }
        }
        startWaitingCampaigns()
    }

    private func failReleases(holding sha: String, reason: String, detail: String) {
        let now = Self.nowMs()
        core.withLock { core in
            for var release in core.releases.values where release.state == .fetching {
                guard let signed = try? SignedManifest(bytes: release.manifest),
                    signed.manifest.sha256 == sha || signed.manifest.deltas.contains(where: { $0.patchSHA256 == sha })
                else { continue }
                release.state = .refused
                core.releases[release.digest] = release
                try? core.state.save(release, nowMs: now)
                report(&core, Self.releaseReport(signed, state: "refused", reason: "\(reason): \(detail)", nowMs: now))
            }
        }
    }

    // MARK: - Orders

    private func order(_ bytes: [UInt8]) {
        let document: FleetDocument
        do {
            document = try FleetDocument(bytes: bytes)
            try policy.verify(document)
        } catch {
            refuse(topic: topics.orders, digest: nil, error, campaign: try? FleetDocument(bytes: bytes))
            return
        }
        let outcome = core.withLock { core -> Result<Bool, FleetDocumentError> in
            let existing = core.campaigns[document.campaign]
            switch FleetOrderRule.judge(document, current: existing.map { ($0.sequence, $0.lastDigest) }) {
            case .duplicate:
                count { $0.duplicates += 1 }
                return .success(false)
            case .refuse(let error):
                return .failure(error)
            case .take:
                break
            }
            var row: FleetState.CampaignRow
            switch document.body {
            case .campaign(let manifest, let settings, let key):
                row = FleetState.CampaignRow(
                    name: document.campaign, sequence: document.sequence, lastDigest: document.digest,
                    manifest: manifest,
                    settings: JSONValue.object(settings).serialized(), vehicleKey: key)
            case .command(let verb):
                guard var found = existing else { return .failure(.unknownCampaign(document.campaign)) }
                found.sequence = document.sequence
                found.lastDigest = document.digest
                // Before the part starts, the last command stands, except that nothing revives a
                // campaign canceled or aborted.
                if found.localID == nil, found.pendingVerb != "cancel", found.pendingVerb != "abort" {
                    found.pendingVerb = verb.rawValue
                }
                row = found
            }
            do { try core.state.save(row) } catch {
                return .failure(.refusedByGateway("the fleet store could not be written: \(error)"))
            }
            core.campaigns[row.name] = row
            count { $0.ordersApplied += 1 }
            return .success(true)
        }
        switch outcome {
        case .failure(let error):
            refuse(topic: topics.orders, digest: document.digest, error, campaign: document)
        case .success(false):
            logger.debug(
                "fleet_order_duplicate", [("campaign", document.campaign), ("sequence", String(document.sequence))])
        case .success(true):
            logger.info(
                "fleet_order_taken",
                [("campaign", document.campaign), ("sequence", String(document.sequence)), ("type", document.type)])
            if case .command(let verb) = document.body {
                apply(verb, to: document.campaign, sequence: document.sequence)
            } else {
                acknowledge(document.campaign, sequence: document.sequence, state: "taken", detail: nil)
            }
            startWaitingCampaigns()
        }
    }

    private func apply(_ verb: FleetDocument.Verb, to name: String, sequence: UInt64) {
        guard let localID = core.withLock({ $0.campaigns[name]?.localID }) else {
            acknowledge(name, sequence: sequence, state: "taken", detail: "applied when the release is whole")
            return
        }
        do {
            _ = try ota.control(localID, verb: verb.rawValue)
            acknowledge(name, sequence: sequence, state: "applied", detail: verb.rawValue)
        } catch {
            // Already in that state (a resume of a running campaign): the order stands, says so.
            acknowledge(name, sequence: sequence, state: "applied", detail: error.description)
        }
    }

    private func startWaitingCampaigns() {
        let waiting = core.withLock { core -> [(FleetState.CampaignRow, Int64)] in
            core.campaigns.values.compactMap { row in
                guard row.localID == nil, row.pendingVerb != "cancel", row.pendingVerb != "abort",
                    let release = core.releases[row.manifest], release.state == .verified,
                    let manifestID = release.manifestID
                else { return nil }
                return (row, manifestID)
            }
        }
        for (row, manifestID) in waiting {
            guard var settings = (try? JSONParser.parse(row.settings))?.object else { continue }
            settings.members.insert(("manifest", .int(manifestID)), at: 0)
            do {
                let created = try ota.createCampaign(.object(settings), fleet: true)
                guard case .int(let id)? = created["id"] else { continue }
                let localID = UInt32(truncatingIfNeeded: id)
                let pending = core.withLock { core -> String? in
                    guard var stored = core.campaigns[row.name] else { return nil }
                    stored.localID = localID
                    let pending = stored.pendingVerb
                    stored.pendingVerb = nil
                    core.campaigns[row.name] = stored
                    core.byLocalID[localID] = row.name
                    try? core.state.save(stored)
                    return pending
                }
                logger.info("fleet_campaign_started", [("campaign", row.name), ("campaign.id", String(localID))])
                acknowledge(row.name, sequence: row.sequence, state: "started", detail: "local campaign \(localID)")
                if let pending, let verb = FleetDocument.Verb(rawValue: pending) {
                    _ = try? ota.control(localID, verb: verb.rawValue)
                }
                if let tally = core.withLock({ $0.tallies[row.name] }) {
                    ota.apply(tally: tally.tally, campaign: localID)
                }
            } catch {
                logger.warning("fleet_campaign_refused", [("campaign", row.name), ("error", error.description)])
                core.withLock { core in
                    guard var stored = core.campaigns[row.name] else { return }
                    stored.pendingVerb = "cancel"
                    core.campaigns[row.name] = stored
                    try? core.state.save(stored)
                }
                refuse(topic: topics.orders, digest: nil, .refusedByGateway(error.description), name: row.name)
            }
        }
    }

    // MARK: - Tallies

    /// The fleet's progress: the local part of the campaign draws its waves, abort and
    /// completion from it. Older tallies than the newest taken are dropped.
    private func tally(_ bytes: [UInt8]) {
        let message: TallyMessage
        do {
            message = try TallyMessage(bytes: bytes)
            try tallyPolicy.verify(message)
        } catch {
            refuse(topic: topics.tallies, digest: nil, error)
            return
        }
        let localID = core.withLock { core -> UInt32? in
            guard core.campaigns[message.campaign] != nil else { return nil }
            if let known = core.tallies[message.campaign], known.tsMs > message.tsMs { return nil }
            core.tallies[message.campaign] = message
            return core.campaigns[message.campaign]?.localID
        }
        if let localID { ota.apply(tally: message.tally, campaign: localID) }
    }

    // MARK: - Reports

    private func vehicleChanged(campaign localID: UInt32, run: VehicleRun) {
        let now = Self.nowMs()
        core.withLock { core in
            guard let name = core.byLocalID[localID], let row = core.campaigns[name] else { return }
            let key = "\(localID) \(run.vin.value)"
            let summary = "\(run.state.rawValue) \(run.attempts) \(run.reason ?? "")"
            guard core.reported[key] != summary else { return }
            core.reported[key] = summary
            var members: [(key: String, value: JSONValue)] = [
                ("type", .string("vehicle")), ("campaign", .string(name)),
                ("vehicle", .string(FleetDocument.vehicleName(run.vin.value, key: row.vehicleKey))),
                ("state", .string(run.state.rawValue)), ("attempts", .int(Int64(run.attempts))),
                ("blocks_done", .int(Int64(run.blocksDone))), ("blocks_total", .int(Int64(run.blocksTotal))),
                ("fetched_blocks", .int(Int64(run.fetchedBlocks))),
            ]
            members.append(("reason", run.reason.map { .string($0) } ?? .null))
            members.append(("ts_ms", .int(run.updatedMs > 0 ? run.updatedMs : now)))
            report(&core, .object(JSONObject(members)))
        }
    }

    private func acknowledge(_ name: String, sequence: UInt64, state: String, detail: String?) {
        core.withLock { core in
            report(
                &core,
                .object(
                    JSONObject([
                        ("type", .string("order")), ("campaign", .string(name)), ("sequence", .int(Int64(sequence))),
                        ("state", .string(state)), ("detail", detail.map { .string($0) } ?? .null),
                        ("ts_ms", .int(Self.nowMs())),
                    ])))
        }
    }

    private func refuse(
        topic: String, digest: String?, _ error: FleetDocumentError, campaign document: FleetDocument? = nil,
        name: String? = nil
    ) {
        let campaign = name ?? document?.campaign
        logger.warning(
            "fleet_refused",
            [
                ("mqtt.topic", topic), ("code", error.code), ("campaign", campaign ?? ""),
                ("sequence", document.map { String($0.sequence) } ?? ""), ("detail", error.description),
            ])
        core.withLock { core in
            count { $0.refused[error.code, default: 0] += 1 }
            report(
                &core,
                .object(
                    JSONObject([
                        ("type", .string("refusal")), ("topic", .string(topic)), ("code", .string(error.code)),
                        ("campaign", campaign.map { .string($0) } ?? .null),
                        ("sequence", document.map { .int(Int64($0.sequence)) } ?? .null),
                        ("digest", (digest ?? document?.digest).map { .string($0) } ?? .null),
                        ("detail", .string(error.description)), ("ts_ms", .int(Self.nowMs())),
                    ])))
        }
    }

    /// Refusal reports kept at most: a flood of forged messages must not fill the board's disk.
    static let maxRefusalBacklog: Int64 = 10_000

    private func report(_ core: inout Core, _ value: JSONValue) {
        if value["type"]?.string == "refusal", core.state.backlog >= Self.maxRefusalBacklog {
            count { $0.reportsDropped += 1 }
            return
        }
        do { try core.state.enqueue(Array(value.serialized().utf8)) } catch {
            logger.error("fleet_store_failed", [("error", "\(error)")])
        }
    }

    /// Publishes what the outbox holds, each with its row id as `report_id` (the receiver's
    /// duplicate check); a row goes only once the broker acknowledged it.
    private func sendReports() {
        let rows = core.withLock { core -> [(id: Int64, payload: [UInt8])] in
            let after = core.inFlight.isEmpty ? 0 : core.lastQueued
            guard core.inFlight.count < 64,
                let rows = try? core.state.pending(after: after, limit: 64 - core.inFlight.count)
            else { return [] }
            for row in rows { core.inFlight.insert(row.id) }
            if let last = rows.last { core.lastQueued = last.id }
            return rows
        }
        for row in rows {
            let payload = Array("{\"report_id\":\(row.id),".utf8) + row.payload.dropFirst()
            do {
                try client.publish(topic: topics.reports(from: configuration.gatewayID), payload: payload, qos: 1) {
                    [self] result in
                    if case .success = result { self.acked.withLock { $0.append(row.id) } }
                }
                count { $0.reportsSent += 1 }
            } catch {
                core.withLock { core in core.inFlight.removeAll() }
                return
            }
        }
    }

    static func releaseReport(_ signed: SignedManifest, state: String, reason: String?, nowMs: Int64) -> JSONValue {
        .object(
            JSONObject([
                ("type", .string("release")), ("manifest", .string(signed.digest)),
                ("name", .string(signed.manifest.name)),
                ("version", .string(signed.manifest.version)), ("sha256", .string(signed.manifest.sha256)),
                ("state", .string(state)), ("reason", reason.map { .string($0) } ?? .null), ("ts_ms", .int(nowMs)),
            ]))
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

extension FleetLink: Service {
    public var serviceName: String { "fleet" }

    public func start() {
        client.start()
        let started = DetachedThread.start(name: "fleet") { [self] in
            run()
            finished.signal()
        }
        precondition(started, "cannot create the fleet thread")
    }

    public func stop() {
        stopping.store(true, ordering: .releasing)
        finished.wait()
        client.stop()
    }
}
