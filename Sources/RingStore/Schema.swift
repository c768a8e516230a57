/// The store's schema, as an ordered list of migrations.
///
/// `PRAGMA user_version` records how many have been applied. A migration is never edited
/// once released; a change is a new migration appended here, so every board upgrades its
/// file in place and no release ever wipes stored data.
enum Schema {
    static let migrations: [String] = [
        // 1: the initial schema.
        """
        CREATE TABLE meta(
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;

        -- One row per ring: its capacity and the next row number to write.
        CREATE TABLE rings(
            name TEXT PRIMARY KEY,
            capacity INTEGER NOT NULL CHECK (capacity > 0),
            next_seqno INTEGER NOT NULL CHECK (next_seqno >= 0),
            -- Rows below this number were dropped when the capacity was lowered.
            floor_seqno INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;

        CREATE TABLE signals(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            unit TEXT NOT NULL
        );

        CREATE TABLE devices(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            kind INTEGER NOT NULL,
            first_seen_ms INTEGER NOT NULL,
            last_seen_ms INTEGER NOT NULL,
            fw TEXT,
            hw TEXT,
            model TEXT,
            seq_highest INTEGER,
            seq_window BLOB,
            seq_latest_ts INTEGER,
            seq_gaps INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            seq_resets INTEGER NOT NULL DEFAULT 0,
            readings INTEGER NOT NULL DEFAULT 0,
            UNIQUE(kind, name)
        );

        -- The reading ring: row number n lives in slot n % capacity and is updated in place
        -- once the ring is full. The row number is not stored: it follows from the slot and
        -- rings.next_seqno, which keeps rows small and their size independent of age.
        CREATE TABLE readings(
            slot INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL,
            signal_id INTEGER NOT NULL,
            ts_ms INTEGER NOT NULL,
            value REAL NOT NULL,
            dev_seq INTEGER NOT NULL
        );

        CREATE TABLE events(
            slot INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL,
            ts_ms INTEGER NOT NULL,
            type TEXT NOT NULL,
            detail TEXT NOT NULL
        );

        CREATE TABLE rejects(
            slot INTEGER PRIMARY KEY,
            ts_ms INTEGER NOT NULL,
            topic TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            payload_head BLOB
        );

        CREATE VIEW readings_v AS
            SELECT d.name AS device,
                   CASE d.kind WHEN 1 THEN 'vehicle' WHEN 2 THEN 'water' END AS kind,
                   s.name AS signal, r.ts_ms AS ts_ms, r.value AS value, r.dev_seq AS seq
            FROM readings r JOIN devices d ON d.id = r.device_id JOIN signals s ON s.id = r.signal_id;

        CREATE VIEW devices_v AS
            SELECT name AS device,
                   CASE kind WHEN 1 THEN 'vehicle' WHEN 2 THEN 'water' END AS kind,
                   last_seen_ms, fw, hw, seq_gaps, duplicates,
                   model, first_seen_ms, seq_resets, readings
            FROM devices;

        CREATE VIEW events_v AS
            SELECT d.name AS device, e.ts_ms AS ts_ms, e.type AS type, e.detail AS detail
            FROM events e JOIN devices d ON d.id = e.device_id;

        CREATE VIEW rejects_v AS
            SELECT ts_ms, topic, reason, detail, payload_head FROM rejects;
        """,
        // 2: edge aggregation. A ring like the others, plus a unique key for late-data merges.
        // revision 0 marks an hourly rollup still being filled; closed windows have 1, 2, ...
        """
        CREATE TABLE aggregates(
            slot INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL,
            signal_id INTEGER NOT NULL,
            window_s INTEGER NOT NULL,
            start_ms INTEGER NOT NULL,
            count INTEGER NOT NULL,
            sum REAL NOT NULL,
            min REAL NOT NULL,
            max REAL NOT NULL,
            first_ts INTEGER NOT NULL,
            last_ts INTEGER NOT NULL,
            last REAL NOT NULL,
            revision INTEGER NOT NULL,
            UNIQUE(device_id, signal_id, window_s, start_ms)
        );
        CREATE INDEX aggregates_open ON aggregates(start_ms) WHERE revision = 0;

        CREATE VIEW aggregates_v AS
            SELECT d.name AS device, s.name AS signal, a.window_s AS window_s, a.start_ms AS start_ms,
                   a.count AS count, a.min AS min, a.max AS max, a.sum / a.count AS mean, a.last AS last,
                   a.revision AS revision, a.sum AS sum, a.first_ts AS first_ts_ms, a.last_ts AS last_ts_ms
            FROM aggregates a JOIN devices d ON d.id = a.device_id JOIN signals s ON s.id = a.signal_id
            WHERE a.revision > 0;
        """,
        // 3: alerts. Every raise and clear in a ring; what is raised now in alerts_active.
        """
        CREATE TABLE alerts(
            slot INTEGER PRIMARY KEY,
            alert_id TEXT NOT NULL,
            device TEXT NOT NULL,
            type TEXT NOT NULL,
            subject TEXT NOT NULL,
            state TEXT NOT NULL,
            value REAL NOT NULL,
            ts_ms INTEGER NOT NULL
        );
        CREATE TABLE alerts_active(
            device TEXT NOT NULL,
            type TEXT NOT NULL,
            subject TEXT NOT NULL,
            state TEXT NOT NULL,
            value REAL NOT NULL,
            since_ms INTEGER NOT NULL,
            alert_id TEXT NOT NULL,
            PRIMARY KEY(device, type, subject)
        ) WITHOUT ROWID;
        CREATE VIEW alerts_v AS
            SELECT alert_id, device, type, state, value, ts_ms, subject FROM alerts;
        CREATE VIEW alerts_active_v AS
            SELECT alert_id, device, type, state, value, since_ms, subject FROM alerts_active;
        """,
        // 4: the upstream outbox. A message leaves only after the upstream broker acknowledged
        // it; priority 0 (alerts) goes before 1 (events) before 2 (aggregates).
        """
        CREATE TABLE outbox(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            priority INTEGER NOT NULL,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            created_ms INTEGER NOT NULL
        );
        CREATE INDEX outbox_order ON outbox(priority, id);
        CREATE VIEW outbox_v AS
            SELECT id, priority, topic, length(payload) AS bytes, created_ms FROM outbox;
        """,
        // 5: an index for per-device series (an early step of the REST API, kept because
        // files carry it; migration 6 drops it again) and the order of the alert history.
        """
        CREATE INDEX readings_series ON readings(device_id, signal_id, ts_ms);
        CREATE INDEX alerts_time ON alerts(ts_ms);
        """,
        // 6: the index of 5 cost every reading two B-tree updates at random places (ingest fell
        // by 70 %). reading_marks maps wall-clock minutes to reading row numbers instead, so a
        // raw series scans only the slots written since its start.
        """
        DROP INDEX IF EXISTS readings_series;
        CREATE TABLE reading_marks(
            minute_ms INTEGER PRIMARY KEY,
            seqno INTEGER NOT NULL
        );
        """,
        // 7: where each water gauge is and how much road it covers, for flooded-road advisories.
        // `source` is `config` (rewritten from the configuration at every start) or `api`.
        """
        CREATE TABLE sensor_sites(
            sensor TEXT PRIMARY KEY,
            lat REAL NOT NULL,
            lon REAL NOT NULL,
            radius_m REAL NOT NULL,
            source TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE VIEW sensor_sites_v AS SELECT sensor, lat, lon, radius_m, source, updated_ms FROM sensor_sites;
        """,
        // 8: which vehicles were told about a running flood incident, so a restarted gateway
        // sends each of them the incident's `cleared` (rows go when it is sent).
        """
        CREATE TABLE advisories_told(
            sensor TEXT NOT NULL,
            vin TEXT NOT NULL,
            incident_ms INTEGER NOT NULL,
            distance_m REAL NOT NULL,
            PRIMARY KEY(sensor, vin)
        ) WITHOUT ROWID;
        """,
        // 9: rows deleted to make room on a full disk, apart from rows overwritten by the ring
        // (before this, both were counted as evicted; older files start the count at 0).
        """
        ALTER TABLE rings ADD COLUMN dropped_for_space INTEGER NOT NULL DEFAULT 0;
        """,
        // 10: the reading ring's columns lose NOT NULL. With it, a NOT NULL failure could stop
        // a multi-row insert halfway, so SQLite opened a statement journal for every message's
        // insert and copied each changed page into it: about 360 instructions a reading under
        // callgrind, for a rollback the store never needs (its one writer binds every column,
        // and a failed commit rolls back whole). The definition is rewritten in place, as
        // SQLite's documentation allows for removing NOT NULL
        // (https://www.sqlite.org/lang_altertable.html#otheralter): no row on disk changes.
        // `RingStore.migrate` bumps the schema cookie afterwards, as that procedure asks.
        """
        PRAGMA writable_schema=ON;
        UPDATE sqlite_schema SET sql = replace(sql, ' NOT NULL', '') WHERE type = 'table' AND name = 'readings';
        PRAGMA writable_schema=OFF;
        """,
    ]

    static var version: Int64 { Int64(migrations.count) }
}
