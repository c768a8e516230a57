import Crypto
public import JSON
public import OTA
import Telemetry

/// Why an operator's request was refused: an HTTP status, a stable code and a message that
/// says what to do.
public struct OTARequestError: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String

    public init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

extension OTAService {
    // MARK: - Blobs

    public func blobStatus(_ sha256: String) throws(OTARequestError) -> JSONValue {
        do {
            return Self.json(try blobs.status(sha256))
        } catch {
            throw OTARequestError(400, "bad_blob_name", error.description)
        }
    }

    /// One chunk of a resumable upload: bytes at `offset` of a blob of `length` bytes.
    public func uploadBlob(sha256: String, length: UInt64, offset: UInt64, bytes: [UInt8]) throws(OTARequestError)
        -> JSONValue
    {
        try uploads.withLock { _ throws(OTARequestError) in
            try uploadBlobLocked(sha256: sha256, length: length, offset: offset, bytes: bytes)
        }
    }

    /// One upload at a time: the blob store appends to `<sha>.<length>.part` in place.
    private func uploadBlobLocked(sha256: String, length: UInt64, offset: UInt64, bytes: [UInt8])
        throws(OTARequestError)
        -> JSONValue
    {
        do {
            let status = try blobs.append(sha256: sha256, length: length, offset: offset, bytes: bytes)
            if status.complete, offset + UInt64(bytes.count) == length {
                logger.info("ota_blob_stored", [("blob.sha256", sha256), ("bytes", String(length))])
            }
            return Self.json(status)
        } catch {
            switch error {
            case .badName: throw OTARequestError(400, "bad_blob_name", error.description)
            case .tooLarge: throw OTARequestError(413, "blob_too_large", error.description)
            case .offsetMismatch, .lengthMismatch, .overrun:
                throw OTARequestError(409, "upload_conflict", error.description)
            case .hashMismatch: throw OTARequestError(422, "hash_mismatch", error.description)
            case .io: throw OTARequestError(507, "storage_failed", error.description)
            }
        }
    }

    static func json(_ status: BlobStore.Status) -> JSONValue {
        .object(
            JSONObject([
                ("sha256", .string(status.sha256)), ("length", status.length.map { .int(Int64($0)) } ?? .null),
                ("received", .int(Int64(status.received))), ("complete", .bool(status.complete)),
            ]))
    }

    // MARK: - Manifests

    /// Checks a signed manifest as a vehicle would (signatures, expiry) plus what only the
    /// gateway can check (the anti-rollback floor, the blobs it names), then stores it.
    public func submitManifest(_ bytes: [UInt8]) throws(OTARequestError) -> (JSONValue, created: Bool) {
        let signed: SignedManifest
        do {
            signed = try SignedManifest(bytes: bytes)
            try policy.verify(signed)
        } catch {
            throw OTARequestError(422, error.code, error.description)
        }
        let release = signed.manifest
        let now = Self.nowMs() / 1000
        guard now < release.expires else {
            throw OTARequestError(422, "expired", ManifestError.expired(expires: release.expires, now: now).description)
        }
        try checkBlob(release.sha256, length: release.length, what: "the image")
        for delta in release.deltas {
            guard delta.format == "tgdiff1" else {
                throw OTARequestError(422, "bad_delta", "delta format \(delta.format) is not supported (tgdiff1 is)")
            }
            try checkBlob(delta.patchSHA256, length: delta.patchLength, what: "the delta from \(delta.fromSHA256)")
        }
        do {
            return try core.withLock { core throws -> (JSONValue, created: Bool) in
                if let existing = try core.store.manifest(digest: signed.digest) { return (Self.json(existing), false) }
                if let floor = try core.store.distributedCounter(hardwareID: release.hardwareID),
                    release.releaseCounter <= floor
                {
                    throw OTARequestError(
                        422, "rollback",
                        "release_counter \(release.releaseCounter) is not above \(floor), already distributed for hardware \(release.hardwareID); sign with a higher --counter"
                    )
                }
                let text = signed.json.serialized()
                let (record, created) = try core.store.insert(manifest: signed, text: text, nowMs: Self.nowMs())
                core.manifests[record.id] = signed
                logger.info(
                    "ota_manifest_stored",
                    [
                        ("manifest.id", String(record.id)), ("name", release.name), ("version", release.version),
                        ("release_counter", String(release.releaseCounter)), ("hardware_id", release.hardwareID),
                    ])
                return (Self.json(record), created)
            }
        } catch let error as OTARequestError {
            throw error
        } catch {
            throw OTARequestError(503, "store_failed", "the OTA store could not be written: \(error)")
        }
    }

    private func checkBlob(_ sha256: String, length: UInt64, what: String) throws(OTARequestError) {
        let status: BlobStore.Status
        do { status = try blobs.status(sha256) } catch {
            throw OTARequestError(422, "bad_blob_name", error.description)
        }
        guard status.complete else {
            throw OTARequestError(
                422, "blob_missing",
                "\(what) (\(sha256)) has not been uploaded completely; PUT /v1/ota/blobs/\(sha256) first")
        }
        guard status.length == length else {
            throw OTARequestError(
                422, "length_mismatch", "\(what) is \(status.length ?? 0) bytes, the manifest signs \(length)")
        }
    }

    static func json(_ record: ManifestRecord) -> JSONValue {
        .object(
            JSONObject([
                ("id", .int(record.id)), ("digest", .string(record.digest)), ("name", .string(record.name)),
                ("version", .string(record.version)), ("release_counter", .int(Int64(record.counter))),
                ("hardware_id", .string(record.hardwareID)), ("sha256", .string(record.sha256)),
                ("length", .int(Int64(record.length))), ("created_ms", .int(record.createdMs)),
            ]))
    }

    public func manifests(limit: Int = 100) throws(OTARequestError) -> JSONValue {
        do {
            let rows = try core.withLock { core in try core.store.manifests(limit: limit) }
            return .object(JSONObject([("manifests", .array(rows.map(Self.json)))]))
        } catch {
            throw OTARequestError(503, "store_failed", "\(error)")
        }
    }

    // MARK: - Campaigns

    /// `{"manifest": id, "waves": [5,25,100], ...settings}`.
    /// `fleet`: a part of a fleet campaign (see `Campaign.fleet`), made by the fleet link.
    public func createCampaign(_ body: JSONValue, fleet: Bool = false) throws(OTARequestError) -> JSONValue {
        let created = try insertCampaign(body, fleet: fleet)
        // The first offers go out now, not at the next tick.
        tick()
        return created
    }

    private func insertCampaign(_ body: JSONValue, fleet: Bool) throws(OTARequestError) -> JSONValue {
        guard let object = body.object else {
            throw OTARequestError(400, "bad_request", "the body must be a JSON object")
        }
        if let unknown = object.keys.first(where: { $0 != "manifest" && !CampaignSettings.keys.contains($0) }) {
            throw OTARequestError(
                400, "unknown_field",
                "\(unknown) is not a campaign field (manifest, \(CampaignSettings.keys.joined(separator: ", ")))")
        }
        guard case .int(let manifestID)? = object["manifest"] else {
            throw OTARequestError(400, "bad_request", "manifest must be the id returned by POST /v1/ota/manifests")
        }
        let settings: CampaignSettings
        do { settings = try CampaignSettings(json: object) } catch {
            throw OTARequestError(400, "bad_settings", error.description)
        }
        let now = Self.nowMs()
        do {
            return try core.withLock { core throws -> JSONValue in
                guard let record = try core.store.manifest(id: manifestID),
                    let signed = core.manifests[record.id] ?? (try? SignedManifest(bytes: Array(record.text.utf8)))
                else {
                    throw OTARequestError(404, "unknown_manifest", "no manifest \(manifestID)")
                }
                let release = signed.manifest
                guard now / 1000 < release.expires else {
                    throw OTARequestError(422, "expired", "manifest \(manifestID) expired at \(release.expires)")
                }
                if let floor = try core.store.distributedCounter(hardwareID: release.hardwareID, excluding: record.id),
                    release.releaseCounter <= floor
                {
                    throw OTARequestError(
                        422, "rollback",
                        "release_counter \(release.releaseCounter) is not above \(floor), already distributed for \(release.hardwareID)"
                    )
                }
                let vins: [VIN]
                switch release.targets {
                case .vins(let list): vins = list
                case .all:
                    vins = core.planner.inventory.filter { $0.value.hardwareID == release.hardwareID }.keys
                        .sorted { $0.value < $1.value }
                }
                let (campaign, runs) = try core.store.createCampaign(
                    manifestID: record.id, hardwareID: release.hardwareID, targetsAll: release.targets == .all,
                    settings: settings, vins: vins, nowMs: now, fleet: fleet)
                core.manifests[record.id] = signed
                core.planner.add(campaign: campaign, release: Self.releaseInfo(release), runs: runs)
                gate.campaign(campaign.id, running: true)
                logger.info(
                    "ota_campaign_created",
                    [
                        ("campaign", String(campaign.id)), ("manifest.id", String(record.id)),
                        ("vehicles", String(runs.count)),
                        ("waves", settings.waves.map(String.init).joined(separator: ",")),
                    ])
                return Self.json(core.planner.entries[campaign.id]!, manifest: record, vehicles: false)
            }
        } catch let error as OTARequestError {
            throw error
        } catch {
            throw OTARequestError(503, "store_failed", "the OTA store could not be written: \(error)")
        }
    }

    public func campaigns() throws(OTARequestError) -> JSONValue {
        do {
            return try core.withLock { core throws -> JSONValue in
                var items: [JSONValue] = []
                for id in core.planner.entries.keys.sorted(by: >) {
                    let entry = core.planner.entries[id]!
                    items.append(
                        Self.json(
                            entry, manifest: try core.store.manifest(id: entry.campaign.manifestID), vehicles: false))
                }
                return .object(JSONObject([("campaigns", .array(items))]))
            }
        } catch {
            throw OTARequestError(503, "store_failed", "\(error)")
        }
    }

    public func campaign(_ id: UInt32) throws(OTARequestError) -> JSONValue {
        do {
            return try core.withLock { core throws -> JSONValue in
                guard let entry = core.planner.entries[id] else {
                    throw OTARequestError(404, "unknown_campaign", "no campaign \(id)")
                }
                return Self.json(
                    entry, manifest: try core.store.manifest(id: entry.campaign.manifestID), vehicles: true)
            }
        } catch let error as OTARequestError {
            throw error
        } catch {
            throw OTARequestError(503, "store_failed", "\(error)")
        }
    }

    public func control(_ id: UInt32, verb: String) throws(OTARequestError) -> JSONValue {
        let now = Self.nowMs()
        let actions: [PlannerAction]
        do {
            actions = try core.withLock { core throws(CampaignPlanner.ControlError) -> [PlannerAction] in
                switch verb {
                case "pause": return try core.planner.pause(id, nowMs: now)
                case "resume": return try core.planner.resume(id, nowMs: now)
                case "abort": return try core.planner.abort(id, nowMs: now)
                default: return try core.planner.cancel(id, nowMs: now)
                }
            }
        } catch {
            switch error {
            case .unknownCampaign: throw OTARequestError(404, "unknown_campaign", error.description)
            case .notAllowed: throw OTARequestError(409, "campaign_state", error.description)
            }
        }
        perform(actions)
        if verb == "resume" { tick() }
        return try campaign(id)
    }

    /// The fleet's tally for a fleet campaign (from the depot, through the fleet link).
    public func apply(tally: FleetTally, campaign id: UInt32) {
        let now = Self.nowMs()
        let actions = core.withLock { core in core.planner.apply(tally: tally, campaign: id, nowMs: now) }
        perform(actions)
        if !actions.isEmpty { tick() }
    }

    public func vehicles() -> JSONValue {
        let inventory = core.withLock { core in core.planner.inventory }
        return .object(
            JSONObject([
                (
                    "vehicles",
                    .array(
                        inventory.sorted { $0.key.value < $1.key.value }.map { vin, firmware in
                            .object(
                                JSONObject([
                                    ("vin", .string(vin.value)), ("hardware_id", .string(firmware.hardwareID)),
                                    ("version", .string(firmware.version)), ("counter", .int(Int64(firmware.counter))),
                                    ("sha256", .string(firmware.sha256)),
                                ]))
                        })
                )
            ]))
    }

    static func json(_ entry: CampaignPlanner.Entry, manifest: ManifestRecord?, vehicles: Bool) -> JSONValue {
        let campaign = entry.campaign
        var counts: [String: Int] = [:]
        for run in entry.runs { counts[run.state.rawValue, default: 0] += 1 }
        var members: [(key: String, value: JSONValue)] = [
            ("id", .int(Int64(campaign.id))), ("state", .string(campaign.state.rawValue)),
            ("reason", campaign.reason.map(JSONValue.string) ?? .null), ("manifest_id", .int(campaign.manifestID)),
            ("release", .string(manifest.map { "\($0.name) \($0.version)" } ?? "")),
            ("release_counter", .int(Int64(manifest?.counter ?? 0))), ("hardware_id", .string(campaign.hardwareID)),
            ("wave", .int(Int64(campaign.wave + 1))), ("settings", campaign.settings.json),
            ("targets", .int(Int64(entry.runs.count))),
            (
                "counts",
                .object(JSONObject(VehicleState.allCases.map { ($0.rawValue, .int(Int64(counts[$0.rawValue] ?? 0))) }))
            ),
            ("created_ms", .int(campaign.createdMs)), ("updated_ms", .int(campaign.updatedMs)),
        ]
        if vehicles {
            members.append(
                (
                    "vehicles",
                    .array(
                        entry.runs.map { run in
                            .object(
                                JSONObject([
                                    ("vin", .string(run.vin.value)), ("state", .string(run.state.rawValue)),
                                    ("wave", .int(Int64(entry.wave(of: run) + 1))),
                                    ("file", run.file.map { .string($0.name) } ?? .null),
                                    ("blocks_done", .int(Int64(run.blocksDone))),
                                    ("blocks_total", .int(Int64(run.blocksTotal))),
                                    ("fetched_blocks", .int(Int64(run.fetchedBlocks))),
                                    ("attempts", .int(Int64(run.attempts))),
                                    ("reason", run.reason.map(JSONValue.string) ?? .null),
                                    ("detail", run.detail.map(JSONValue.string) ?? .null),
                                    ("updated_ms", .int(run.updatedMs)),
                                ]))
                        })
                ))
        }
        return .object(JSONObject(members))
    }

    /// Gauges for `/metrics`: campaigns by state, vehicles by state, transfers in progress.
    public func gauges() -> (campaigns: [String: Int], vehicles: [String: Int], transfers: Int, queuedRequests: Int) {
        let (campaigns, vehicles, transfers) = core.withLock { core -> ([String: Int], [String: Int], Int) in
            var campaigns: [String: Int] = [:]
            var vehicles: [String: Int] = [:]
            for entry in core.planner.entries.values {
                campaigns[entry.campaign.state.rawValue, default: 0] += 1
                guard !entry.campaign.state.isFinal else { continue }
                for run in entry.runs { vehicles[run.state.rawValue, default: 0] += 1 }
            }
            return (campaigns, vehicles, core.planner.transfersInProgress)
        }
        return (campaigns, vehicles, transfers, sender.queued)
    }
}
