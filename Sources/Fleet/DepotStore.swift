public import Campaigns
import Crypto
public import JSON
public import OTA
import SQLite

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The operator's depot on disk: `blobs/<sha256>` (the images and deltas gateways fetch) and
/// `depot.db` (what was announced, each campaign's sequence, what gateways reported and how
/// many bytes each fetched). `gwctl ota fleet` writes it, `gwctl ota fleet serve` serves from it
/// and records into it, `gwctl ota status --city` reads it.
public final class DepotStore {
    public let directory: String
    private let db: Database

    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory + "/blobs", withIntermediateDirectories: true)
        db = try Database(path: directory + "/depot.db")
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;")
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS releases(digest TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,
                sha256 TEXT NOT NULL, length INTEGER NOT NULL, manifest BLOB NOT NULL, published_ms INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS orders(campaign TEXT NOT NULL, sequence INTEGER NOT NULL, type TEXT NOT NULL,
                verb TEXT, manifest TEXT, digest TEXT NOT NULL, document BLOB NOT NULL, published_ms INTEGER NOT NULL,
                PRIMARY KEY(campaign, sequence));
            CREATE TABLE IF NOT EXISTS reports(gateway TEXT NOT NULL, report_id INTEGER NOT NULL, type TEXT NOT NULL,
                campaign TEXT, vehicle TEXT, manifest TEXT, state TEXT, code TEXT, reason TEXT, body TEXT NOT NULL,
                ts_ms INTEGER, received_ms INTEGER NOT NULL, PRIMARY KEY(gateway, report_id));
            CREATE TABLE IF NOT EXISTS served(gateway TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
                requests INTEGER NOT NULL, PRIMARY KEY(gateway, sha256));
            """)
    }

    public func blobPath(_ sha256: String) -> String { directory + "/blobs/" + sha256 }

    /// Copies a blob in under its hash (written to a temporary name, synced, renamed).
    public func addBlob(_ bytes: [UInt8]) throws -> String {
        let sha = SHA256.hex(bytes)
        let path = blobPath(sha)
        if FileManager.default.fileExists(atPath: path) { return sha }
        let temporary = path + ".tmp"
        try Data(bytes).write(to: URL(fileURLWithPath: temporary), options: .atomic)
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
        return sha
    }

    public func record(
        release digest: String, name: String, version: String, sha256: String, length: UInt64,
        manifest: [UInt8], nowMs: Int64
    ) throws {
        let statement = try db.statement("INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?, ?, ?)")
        statement.bind(arguments: digest, name, version, sha256, Int64(length), manifest, nowMs)
        try statement.run()
    }

    /// The manifest digest of the newest release with this name, or of `digest` if known.
    public func release(matching text: String) throws -> (digest: String, manifest: [UInt8])? {
        let statement = try db.statement(
            "SELECT digest, manifest FROM releases WHERE digest = ? OR name = ? ORDER BY published_ms DESC LIMIT 1")
        statement.bind(arguments: text, text)
        // Every query is reset when done: a statement left on a row keeps a read snapshot
        // open, and the next write on this connection then fails (SQLITE_BUSY_SNAPSHOT).
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return (statement.text(0) ?? "", statement.blob(1))
    }

    public func nextSequence(campaign: String) throws -> UInt64 {
        let statement = try db.statement("SELECT coalesce(max(sequence), 0) FROM orders WHERE campaign = ?")
        statement.bind(arguments: campaign)
        defer { statement.reset() }
        _ = try statement.step()
        return UInt64(statement.int64(0)) + 1
    }

    /// Every order of a campaign as published, in sequence order: what `gwctl fleet announce`
    /// publishes again for a gateway that joined later.
    public func orders(campaign: String) throws -> [[UInt8]] {
        let statement = try db.statement("SELECT document FROM orders WHERE campaign = ? ORDER BY sequence")
        statement.bind(arguments: campaign)
        defer { statement.reset() }
        var documents: [[UInt8]] = []
        while try statement.step() { documents.append(statement.blob(0)) }
        return documents
    }

    public func campaignManifest(_ campaign: String) throws -> String? {
        let statement = try db.statement("SELECT manifest FROM orders WHERE campaign = ? AND type = 'campaign'")
        statement.bind(arguments: campaign)
        defer { statement.reset() }
        return try statement.step() ? statement.text(0) : nil
    }

    public func record(order document: FleetDocumentRecord, nowMs: Int64) throws {
        let statement = try db.statement("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        statement.bind(
            arguments: document.campaign, Int64(document.sequence), document.type, document.verb, document.manifest,
            document.digest, document.bytes, nowMs)
        try statement.run()
    }

    /// Stores one report; false when this gateway's report id was already there (a redelivery).
    public func record(report body: JSONObject, gateway: String, text: String, nowMs: Int64) throws -> Bool {
        guard case .int(let id)? = body["report_id"], let type = body["type"]?.string else { return false }
        let statement = try db.statement(
            "INSERT OR IGNORE INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        var ts: Int64?
        if case .int(let value)? = body["ts_ms"] { ts = value }
        statement.bind(
            arguments: gateway, id, type, body["campaign"]?.string, body["vehicle"]?.string, body["manifest"]?.string,
            body["state"]?.string, body["code"]?.string, body["reason"]?.string ?? body["detail"]?.string, text, ts,
            nowMs)
        try statement.run()
        return (try db.scalarInt("SELECT changes()") ?? 0) > 0
    }

    public func served(gateway: String, sha256: String, bytes: Int64) throws {
        let statement = try db.statement(
            """
            INSERT INTO served VALUES (?, ?, ?, 1) ON CONFLICT(gateway, sha256)
            DO UPDATE SET bytes = bytes + excluded.bytes, requests = requests + 1
            """)
        statement.bind(arguments: gateway, sha256, bytes)
        try statement.run()
    }

    /// The campaign's target order as fleet names and its settings, for tallies.
    public struct Plan: Sendable {
        public var order: [String: Int]
        public var targets: Int
        public var settings: CampaignSettings
        public var targetsAll: Bool
    }

    public func plan(campaign: String) throws -> Plan? {
        let statement = try db.statement("SELECT document FROM orders WHERE campaign = ? AND type = 'campaign'")
        statement.bind(arguments: campaign)
        defer { statement.reset() }
        guard try statement.step(), let document = try? FleetDocument(bytes: statement.blob(0)),
            case .campaign(let digest, let settingsJSON, let key) = document.body,
            let release = try self.release(matching: digest), let signed = try? SignedManifest(bytes: release.manifest)
        else { return nil }
        let settings = (try? CampaignSettings(json: settingsJSON)) ?? CampaignSettings()
        switch signed.manifest.targets {
        case .vins(let vins):
            var order: [String: Int] = [:]
            for (position, vin) in vins.enumerated() {
                order[FleetDocument.vehicleName(vin.value, key: key)] = position
            }
            return Plan(order: order, targets: vins.count, settings: settings, targetsAll: false)
        case .all:
            return Plan(order: [:], targets: 0, settings: settings, targetsAll: true)
        }
    }

    /// Each vehicle's latest state in a campaign, wherever it was: an `installed` anywhere
    /// wins, otherwise the newest report.
    public func latestStates(campaign: String) throws -> [String: (gateway: String, state: String, reason: String?)] {
        let vehicles = try db.statement(
            """
            SELECT vehicle, gateway, state, reason FROM reports WHERE type = 'vehicle' AND campaign = ?
            ORDER BY coalesce(ts_ms, 0), received_ms
            """)
        vehicles.bind(arguments: campaign)
        var latest: [String: (gateway: String, state: String, reason: String?)] = [:]
        while try vehicles.step() {
            let name = vehicles.text(0) ?? ""
            if latest[name]?.state == "installed" { continue }
            latest[name] = (vehicles.text(1) ?? "", vehicles.text(2) ?? "", vehicles.text(3))
        }
        return latest
    }

    /// The fleet's tally of a campaign: what every gateway's part of it decides waves, abort
    /// and completion by. Wave figures are cumulative over the target order.
    public func tally(campaign: String, plan: Plan) throws -> FleetTally {
        let latest = try latestStates(campaign: campaign)
        let terminal: Set<String> = ["installed", "failed", "rejected", "timed_out", "canceled"]
        let failure: Set<String> = ["failed", "rejected", "timed_out"]
        let targets = plan.targetsAll ? latest.count : plan.targets
        var waves: [FleetTally.Wave] = []
        for percent in plan.settings.waves {
            let size = min(targets, max(1, (targets * percent + 99) / 100))
            var wave = FleetTally.Wave(size: size, installed: 0, terminal: 0)
            for (name, entry) in latest {
                guard let position = plan.order[name] ?? (plan.targetsAll ? 0 : nil), position < size else { continue }
                if entry.state == "installed" { wave.installed += 1 }
                if terminal.contains(entry.state) { wave.terminal += 1 }
            }
            waves.append(wave)
        }
        return FleetTally(
            targets: targets,
            finished: latest.values.count { terminal.contains($0.state) && $0.state != "canceled" },
            failures: latest.values.count { failure.contains($0.state) },
            installed: latest.values.count { $0.state == "installed" },
            terminal: latest.values.count { terminal.contains($0.state) }, waves: waves)
    }

    /// The fleet's view of one campaign, from what the gateways reported: each vehicle once
    /// (its latest report; an `installed` anywhere wins, so a vehicle that roamed off a gateway
    /// and timed out there still counts as installed), by state, by gateway, failures with
    /// reasons, bytes each gateway fetched, and the gateways that do not hold the release yet.
    public func fleetStatus(campaign: String) throws -> JSONValue {
        guard let manifest = try campaignManifest(campaign) else {
            return .object(JSONObject([("campaign", .string(campaign)), ("known", .bool(false))]))
        }
        let latest = try latestStates(campaign: campaign)
        var byState: [String: Int64] = [:]
        var byGateway: [String: [String: Int64]] = [:]
        var failures: [JSONValue] = []
        var list: [JSONValue] = []
        for (name, entry) in latest.sorted(by: { $0.key < $1.key }) {
            byState[entry.state, default: 0] += 1
            byGateway[entry.gateway, default: [:]][entry.state, default: 0] += 1
            if ["failed", "rejected", "timed_out"].contains(entry.state) {
                failures.append(
                    .object(
                        JSONObject([
                            ("vehicle", .string(name)), ("gateway", .string(entry.gateway)),
                            ("state", .string(entry.state)), ("reason", entry.reason.map { .string($0) } ?? .null),
                        ])))
            }
            list.append(
                .object(
                    JSONObject([
                        ("vehicle", .string(name)), ("gateway", .string(entry.gateway)),
                        ("state", .string(entry.state)),
                    ])))
        }
        let sha = try db.statement("SELECT sha256 FROM releases WHERE digest = ?")
        sha.bind(arguments: manifest)
        let blob = try sha.step() ? sha.text(0) ?? "" : ""
        sha.reset()
        let gateways = try db.statement(
            """
            SELECT g.gateway,
                (SELECT state FROM reports r WHERE r.gateway = g.gateway AND r.type = 'release' AND r.manifest = ?1
                 ORDER BY (r.state = 'verified') DESC, r.ts_ms DESC LIMIT 1),
                (SELECT coalesce(sum(bytes), 0) FROM served s WHERE s.gateway = g.gateway),
                (SELECT coalesce(sum(bytes), 0) FROM served s WHERE s.gateway = g.gateway AND s.sha256 = ?2),
                (SELECT count(*) FROM reports r WHERE r.gateway = g.gateway AND r.type = 'refusal')
            FROM (SELECT gateway FROM reports UNION SELECT gateway FROM served) g ORDER BY g.gateway
            """)
        gateways.bind(arguments: manifest, blob)
        var perGateway: [JSONValue] = []
        var missing: [JSONValue] = []
        while try gateways.step() {
            let gateway = gateways.text(0) ?? ""
            let release = gateways.text(1)
            if release != "verified" { missing.append(.string(gateway)) }
            perGateway.append(
                .object(
                    JSONObject([
                        ("gateway", .string(gateway)), ("release", release.map { .string($0) } ?? .null),
                        ("bytes_fetched", .int(gateways.int64(2))), ("image_bytes_fetched", .int(gateways.int64(3))),
                        ("refusals", .int(gateways.int64(4))),
                        (
                            "vehicles",
                            .object(
                                JSONObject(
                                    (byGateway[gateway] ?? [:]).sorted { $0.key < $1.key }.map {
                                        ($0.key, .int($0.value))
                                    }))
                        ),
                    ])))
        }
        return .object(
            JSONObject([
                ("campaign", .string(campaign)), ("known", .bool(true)), ("manifest", .string(manifest)),
                ("vehicles", .int(Int64(list.count))),
                ("by_state", .object(JSONObject(byState.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }))),
                ("gateways", .array(perGateway)), ("without_release", .array(missing)), ("failures", .array(failures)),
                ("vehicle_states", .array(list)),
            ]))
    }

    /// Refusals the gateways reported, newest first.
    public func refusals(limit: Int = 50) throws -> [JSONValue] {
        let statement = try db.statement(
            "SELECT gateway, code, campaign, reason, ts_ms FROM reports WHERE type = 'refusal' ORDER BY received_ms DESC LIMIT ?"
        )
        statement.bind(arguments: Int64(limit))
        var rows: [JSONValue] = []
        while try statement.step() {
            rows.append(
                .object(
                    JSONObject([
                        ("gateway", .string(statement.text(0) ?? "")), ("code", .string(statement.text(1) ?? "")),
                        ("campaign", statement.text(2).map { .string($0) } ?? .null),
                        ("detail", .string(statement.text(3) ?? "")), ("ts_ms", .int(statement.int64(4))),
                    ])))
        }
        return rows
    }
}

/// What the depot keeps of an order it published.
public struct FleetDocumentRecord: Sendable {
    public var campaign: String
    public var sequence: UInt64
    public var type: String
    public var verb: String?
    public var manifest: String?
    public var digest: String
    public var bytes: [UInt8]

    public init(_ document: FleetDocument) {
        campaign = document.campaign
        sequence = document.sequence
        type = document.type == FleetDocument.campaignType ? "campaign" : "command"
        switch document.body {
        case .campaign(let manifest, _, _):
            self.manifest = manifest
            verb = nil
        case .command(let verb):
            self.verb = verb.rawValue
            manifest = nil
        }
        digest = document.digest
        bytes = Array(document.json.serialized().utf8)
    }
}
