import SQLite

/// What a gateway keeps of the fleet channel, in `fleet.db` beside `ota.db`: the releases
/// announced to it, each fleet campaign's highest sequence (the replay guard, which must
/// survive restarts: a replayed command after a reboot is still a replay), and the reports not
/// yet acknowledged by the city broker.
final class FleetState {
    enum ReleaseState: String { case fetching, verified, refused }

    struct Release {
        var digest: String
        var manifest: [UInt8]
        var state: ReleaseState
        var manifestID: Int64?
    }

    struct CampaignRow {
        var name: String
        var sequence: UInt64
        var lastDigest: String
        var manifest: String
        var settings: String
        var vehicleKey: [UInt8]
        var localID: UInt32?
        /// A command that arrived before the release was whole, applied when the campaign starts.
        var pendingVerb: String?
    }

    private let db: Database

    init(path: String) throws {
        db = try Database(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS releases(
                digest TEXT PRIMARY KEY, manifest BLOB NOT NULL, state TEXT NOT NULL, manifest_id INTEGER,
                received_ms INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS campaigns(
                name TEXT PRIMARY KEY, sequence INTEGER NOT NULL, last_digest TEXT NOT NULL, manifest TEXT NOT NULL,
                settings TEXT NOT NULL, vehicle_key BLOB NOT NULL, local_id INTEGER, pending_verb TEXT) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL);
            """)
    }

    func releases() throws -> [Release] {
        let statement = try db.statement(
            "SELECT digest, manifest, state, manifest_id FROM releases ORDER BY received_ms")
        var rows: [Release] = []
        while try statement.step() {
            rows.append(
                Release(
                    digest: statement.text(0) ?? "", manifest: statement.blob(1),
                    state: ReleaseState(rawValue: statement.text(2) ?? "") ?? .refused,
                    manifestID: statement.isNull(3) ? nil : statement.int64(3)))
        }
        return rows
    }

    func save(_ release: Release, nowMs: Int64) throws {
        let statement = try db.statement(
            """
            INSERT INTO releases(digest, manifest, state, manifest_id, received_ms) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT(digest) DO UPDATE SET state = excluded.state, manifest_id = excluded.manifest_id
            """)
        statement.bind(arguments: release.digest, release.manifest, release.state.rawValue, release.manifestID, nowMs)
        try statement.run()
    }

    func campaigns() throws -> [CampaignRow] {
        let statement = try db.statement(
            "SELECT name, sequence, last_digest, manifest, settings, vehicle_key, local_id, pending_verb FROM campaigns"
        )
        var rows: [CampaignRow] = []
        while try statement.step() {
            rows.append(
                CampaignRow(
                    name: statement.text(0) ?? "", sequence: UInt64(statement.int64(1)),
                    lastDigest: statement.text(2) ?? "", manifest: statement.text(3) ?? "",
                    settings: statement.text(4) ?? "{}", vehicleKey: statement.blob(5),
                    localID: statement.isNull(6) ? nil : UInt32(truncatingIfNeeded: statement.int64(6)),
                    pendingVerb: statement.text(7)))
        }
        return rows
    }

    func save(_ row: CampaignRow) throws {
        let statement = try db.statement(
            """
            INSERT OR REPLACE INTO campaigns(name, sequence, last_digest, manifest, settings, vehicle_key, local_id,
                pending_verb) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """)
        statement.bind(
            arguments: row.name, Int64(row.sequence), row.lastDigest, row.manifest, row.settings, row.vehicleKey,
            row.localID.map { Int64($0) }, row.pendingVerb)
        try statement.run()
    }

    func enqueue(_ payload: [UInt8]) throws {
        let statement = try db.statement("INSERT INTO outbox(payload) VALUES (?)")
        statement.bind(arguments: payload)
        try statement.run()
    }

    func pending(after id: Int64, limit: Int) throws -> [(id: Int64, payload: [UInt8])] {
        let statement = try db.statement("SELECT id, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?")
        statement.bind(arguments: id, Int64(limit))
        var rows: [(Int64, [UInt8])] = []
        while try statement.step() { rows.append((statement.int64(0), statement.blob(1))) }
        return rows
    }

    func delete(_ ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        let statement = try db.statement("DELETE FROM outbox WHERE id = ?")
        try db.transaction {
            for id in ids {
                statement.reset()
                statement.bind(arguments: id)
                try statement.run()
            }
        }
    }

    var backlog: Int64 { (try? db.scalarInt("SELECT count(*) FROM outbox")) ?? 0 }
}
