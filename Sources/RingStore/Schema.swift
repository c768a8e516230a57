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
        """
    ]

    static var version: Int64 { Int64(migrations.count) }
}
