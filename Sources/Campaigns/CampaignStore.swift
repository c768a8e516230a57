import JSON
public import OTA
import SQLite
public import Telemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A stored, verified manifest.
public struct ManifestRecord: Sendable, Equatable {
    public var id: Int64
    public var digest: String
    public var name: String
    public var version: String
    public var counter: UInt64
    public var hardwareID: String
    public var sha256: String
    public var length: UInt64
    /// The signed manifest as uploaded (what vehicles receive).
    public var text: String
    public var createdMs: Int64
}

/// Campaign metadata in its own SQLite file (`ota.db` beside the ring store): manifests,
/// campaigns, every vehicle's state in each, and the firmware each vehicle last reported.
///
/// Writes happen on state changes only (not per block), each batch of planner actions in one
/// transaction with `synchronous=FULL`, so a campaign resumes after a crash where it was.
public final class CampaignStore {
    let db: Database

    public init(path: String) throws {
        db = try Database(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS manifests(
                id INTEGER PRIMARY KEY AUTOINCREMENT, digest TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
                version TEXT NOT NULL, release_counter INTEGER NOT NULL, hardware_id TEXT NOT NULL,
                sha256 TEXT NOT NULL, length INTEGER NOT NULL, json TEXT NOT NULL, created_ms INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS campaigns(
                id INTEGER PRIMARY KEY AUTOINCREMENT, manifest_id INTEGER NOT NULL REFERENCES manifests(id),
                hardware_id TEXT NOT NULL, targets_all INTEGER NOT NULL, state TEXT NOT NULL, wave INTEGER NOT NULL,
                reason TEXT, settings TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS campaign_vehicles(
                campaign_id INTEGER NOT NULL REFERENCES campaigns(id), vin TEXT NOT NULL, ord INTEGER NOT NULL,
                state TEXT NOT NULL, attempts INTEGER NOT NULL, file TEXT, blocks_done INTEGER NOT NULL,
                blocks_total INTEGER NOT NULL, fetched_blocks INTEGER NOT NULL, reason TEXT, detail TEXT,
                progress_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
                PRIMARY KEY(campaign_id, vin)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS vehicle_firmware(
                vin TEXT PRIMARY KEY, hardware_id TEXT NOT NULL, version TEXT NOT NULL, counter INTEGER NOT NULL,
                sha256 TEXT NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;
            """)
        // Fleet campaigns (added with fleet OTA; files made before have none).
        if try db.scalarInt("SELECT count(*) FROM pragma_table_info('campaigns') WHERE name = 'fleet'") == 0 {
            try db.execute("ALTER TABLE campaigns ADD COLUMN fleet INTEGER NOT NULL DEFAULT 0")
        }
    }

    // MARK: - Manifests

    /// Stores a verified manifest; the same signed bytes again return the existing row.
    public func insert(manifest signed: SignedManifest, text: String, nowMs: Int64) throws -> (
        ManifestRecord, created: Bool
    ) {
        if let existing = try manifest(digest: signed.digest) { return (existing, false) }
        let release = signed.manifest
        let insert = try db.statement(
            """
            INSERT INTO manifests(digest, name, version, release_counter, hardware_id, sha256, length, json, created_ms)
            VALUES (?,?,?,?,?,?,?,?,?)
            """)
        insert.bind(
            arguments: signed.digest, release.name, release.version, Int64(release.releaseCounter), release.hardwareID,
            release.sha256, Int64(release.length), text, nowMs)
        try insert.run()
        return (try manifest(id: db.lastInsertRowID)!, true)
    }

    private static let manifestColumns =
        "id, digest, name, version, release_counter, hardware_id, sha256, length, json, created_ms"

    private func readManifest(_ row: Statement) -> ManifestRecord {
        ManifestRecord(
            id: row.int64(0), digest: row.text(1) ?? "", name: row.text(2) ?? "", version: row.text(3) ?? "",
            counter: UInt64(max(0, row.int64(4))), hardwareID: row.text(5) ?? "", sha256: row.text(6) ?? "",
            length: UInt64(max(0, row.int64(7))), text: row.text(8) ?? "", createdMs: row.int64(9))
    }

    public func manifest(id: Int64) throws -> ManifestRecord? {
        let query = try db.statement("SELECT \(Self.manifestColumns) FROM manifests WHERE id = ?")
        query.bind(arguments: id)
        defer { query.reset() }
        return try query.step() ? readManifest(query) : nil
    }

    public func manifest(digest: String) throws -> ManifestRecord? {
        let query = try db.statement("SELECT \(Self.manifestColumns) FROM manifests WHERE digest = ?")
        query.bind(arguments: digest)
        defer { query.reset() }
        return try query.step() ? readManifest(query) : nil
    }

    public func manifests(limit: Int) throws -> [ManifestRecord] {
        let query = try db.statement("SELECT \(Self.manifestColumns) FROM manifests ORDER BY id DESC LIMIT ?")
        query.bind(arguments: limit)
        defer { query.reset() }
        var rows: [ManifestRecord] = []
        while try query.step() { rows.append(readManifest(query)) }
        return rows
    }

    /// The highest release counter any campaign has distributed for this hardware, other
    /// than `manifestID`'s own campaigns: the anti-rollback floor at upload.
    public func distributedCounter(hardwareID: String, excluding manifestID: Int64 = -1) throws -> UInt64? {
        let query = try db.statement(
            """
            SELECT max(m.release_counter) FROM campaigns c JOIN manifests m ON m.id = c.manifest_id
            WHERE m.hardware_id = ? AND m.id != ?
            """)
        query.bind(arguments: hardwareID, manifestID)
        defer { query.reset() }
        guard try query.step(), !query.isNull(0) else { return nil }
        return UInt64(max(0, query.int64(0)))
    }

    // MARK: - Campaigns

    public func createCampaign(
        manifestID: Int64, hardwareID: String, targetsAll: Bool, settings: CampaignSettings, vins: [VIN], nowMs: Int64,
        fleet: Bool = false
    ) throws -> (Campaign, [VehicleRun]) {
        try db.transaction {
            let insert = try db.statement(
                """
                INSERT INTO campaigns(manifest_id, hardware_id, targets_all, state, wave, reason, settings, created_ms,
                    updated_ms, fleet)
                VALUES (?,?,?,?,0,NULL,?,?,?,?)
                """)
            insert.bind(
                arguments: manifestID, hardwareID, targetsAll ? 1 : 0, CampaignState.scheduled.rawValue,
                settings.json.serialized(), nowMs, nowMs, fleet ? 1 : 0)
            try insert.run()
            let id = db.lastInsertRowID
            guard id > 0, id <= Int64(UInt32.max) else { throw StoreFailure("campaign ids are exhausted") }
            let campaign = Campaign(
                id: UInt32(id), manifestID: manifestID, hardwareID: hardwareID, targetsAll: targetsAll,
                settings: settings, state: .scheduled, createdMs: nowMs, updatedMs: nowMs, fleet: fleet)
            let runs = vins.enumerated().map { VehicleRun(vin: $1, order: $0, progressMs: nowMs, updatedMs: nowMs) }
            for run in runs { try save(run: run, campaign: campaign.id) }
            return (campaign, runs)
        }
    }

    /// Erases a vehicle's records (its runs and its firmware) with `secure_delete`, then
    /// truncates the log so no copy stays in it. Returns how many rows went.
    public func forget(vin: VIN) throws -> Int {
        try db.execute("PRAGMA secure_delete=ON")
        let removed = try db.transaction {
            var removed = 0
            for table in ["campaign_vehicles", "vehicle_firmware"] {
                let delete = try db.statement("DELETE FROM \(table) WHERE vin = ?")
                delete.bind(arguments: vin.value)
                try delete.run()
                removed += Int(db.changes)
            }
            return removed
        }
        _ = try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed
    }

    /// Applies a planner step's writes in one transaction.
    public func apply(_ actions: [PlannerAction]) throws {
        guard
            actions.contains(where: {
                switch $0 {
                case .saveRun, .saveCampaign, .saveInventory: true
                default: false
                }
            })
        else { return }
        try db.transaction {
            for action in actions {
                switch action {
                case .saveRun(let campaign, let run): try save(run: run, campaign: campaign)
                case .saveCampaign(let campaign): try save(campaign: campaign)
                case .saveInventory(let vin, let firmware): try save(vin: vin, firmware: firmware)
                default: break
                }
            }
        }
    }

    private func save(run: VehicleRun, campaign: UInt32) throws {
        let upsert = try db.statement(
            """
            INSERT INTO campaign_vehicles(campaign_id, vin, ord, state, attempts, file, blocks_done, blocks_total,
                fetched_blocks, reason, detail, progress_ms, updated_ms)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
            ON CONFLICT(campaign_id, vin) DO UPDATE SET state = excluded.state, attempts = excluded.attempts,
                file = excluded.file, blocks_done = excluded.blocks_done, blocks_total = excluded.blocks_total,
                fetched_blocks = excluded.fetched_blocks, reason = excluded.reason, detail = excluded.detail,
                progress_ms = excluded.progress_ms, updated_ms = excluded.updated_ms
            """)
        upsert.bind(
            arguments: Int64(campaign), run.vin.value, run.order, run.state.rawValue, run.attempts, run.file?.name,
            run.blocksDone, run.blocksTotal, run.fetchedBlocks, run.reason, run.detail, run.progressMs, run.updatedMs)
        try upsert.run()
    }

    private func save(campaign: Campaign) throws {
        let update = try db.statement(
            "UPDATE campaigns SET state = ?, wave = ?, reason = ?, updated_ms = ? WHERE id = ?")
        update.bind(
            arguments: campaign.state.rawValue, campaign.wave, campaign.reason, campaign.updatedMs, Int64(campaign.id))
        try update.run()
    }

    private func save(vin: VIN, firmware: InstalledFirmware) throws {
        let upsert = try db.statement(
            """
            INSERT INTO vehicle_firmware(vin, hardware_id, version, counter, sha256, updated_ms)
            VALUES (?,?,?,?,?,CAST(strftime('%s','now') AS INTEGER) * 1000)
            ON CONFLICT(vin) DO UPDATE SET hardware_id = excluded.hardware_id, version = excluded.version,
                counter = excluded.counter, sha256 = excluded.sha256, updated_ms = excluded.updated_ms
            """)
        upsert.bind(
            arguments: vin.value, firmware.hardwareID, firmware.version, Int64(firmware.counter), firmware.sha256)
        try upsert.run()
    }

    // MARK: - Loading at start

    public func inventory() throws -> [VIN: InstalledFirmware] {
        let query = try db.statement("SELECT vin, hardware_id, version, counter, sha256 FROM vehicle_firmware")
        defer { query.reset() }
        var result: [VIN: InstalledFirmware] = [:]
        while try query.step() {
            guard let vin = VIN(query.text(0) ?? "") else { continue }
            result[vin] = InstalledFirmware(
                hardwareID: query.text(1) ?? "", version: query.text(2) ?? "", counter: UInt64(max(0, query.int64(3))),
                sha256: query.text(4) ?? "")
        }
        return result
    }

    public func campaigns() throws -> [(Campaign, [VehicleRun])] {
        let query = try db.statement(
            "SELECT id, manifest_id, hardware_id, targets_all, state, wave, reason, settings, created_ms, updated_ms, fleet FROM campaigns ORDER BY id"
        )
        var campaigns: [Campaign] = []
        while try query.step() {
            let settingsText = query.text(7) ?? "{}"
            let settings =
                (try? JSONParser.parse(settingsText)).flatMap(\.object).flatMap { try? CampaignSettings(json: $0) }
                ?? CampaignSettings()
            campaigns.append(
                Campaign(
                    id: UInt32(truncatingIfNeeded: query.int64(0)), manifestID: query.int64(1),
                    hardwareID: query.text(2) ?? "", targetsAll: query.int64(3) != 0, settings: settings,
                    state: CampaignState(rawValue: query.text(4) ?? "") ?? .canceled, wave: Int(query.int64(5)),
                    reason: query.text(6), createdMs: query.int64(8), updatedMs: query.int64(9),
                    fleet: query.int64(10) != 0))
        }
        query.reset()
        return try campaigns.map { campaign in (campaign, try runs(campaign: campaign.id)) }
    }

    public func runs(campaign: UInt32) throws -> [VehicleRun] {
        let query = try db.statement(
            """
            SELECT vin, ord, state, attempts, file, blocks_done, blocks_total, fetched_blocks, reason, detail,
                progress_ms, updated_ms FROM campaign_vehicles WHERE campaign_id = ? ORDER BY ord
            """)
        query.bind(arguments: Int64(campaign))
        defer { query.reset() }
        var runs: [VehicleRun] = []
        while try query.step() {
            guard let vin = VIN(query.text(0) ?? "") else { continue }
            runs.append(
                VehicleRun(
                    vin: vin, order: Int(query.int64(1)), state: VehicleState(rawValue: query.text(2) ?? "") ?? .queued,
                    attempts: Int(query.int64(3)), file: query.text(4).flatMap(FileKind.init(name:)),
                    blocksDone: Int(query.int64(5)), blocksTotal: Int(query.int64(6)),
                    fetchedBlocks: Int(query.int64(7)), reason: query.text(8), detail: query.text(9),
                    progressMs: query.int64(10), updatedMs: query.int64(11)))
        }
        return runs
    }
}

struct StoreFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
