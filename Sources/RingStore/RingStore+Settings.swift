public import JSON
public import Settings

extension RingStore.Configuration {
    /// The `store` section's keys, in the order `--print-default-config` prints them.
    public static let section = ConfigSection<Self>([
        .text("path", \.path),
        .integer("capacity_readings", \.capacityReadings, range: 1_000...1_000_000_000),
        .integer("capacity_events", \.capacityEvents, range: 100...100_000_000),
        .integer("capacity_rejects", \.capacityRejects, range: 100...10_000_000),
        .integer("flush_interval_ms", \.flushIntervalMs, range: 1...10_000),
        .integer("flush_max_readings", \.flushMaxReadings, range: 1...1_000_000),
        .choice("synchronous", \.synchronous),
        .integer("max_devices", \.maxDevices, range: 1...10_000_000),
        .integer("max_file_bytes", \.maxFileBytes, range: 0...(1 << 40)),
        .integer("reserve_bytes", \.reserveBytes, range: 0...(1 << 34)),
    ])

    /// Reads the `store` object of `root`, with the checks that span its keys.
    public static func read(_ root: JSONObject, into store: inout Self, reader: inout ConfigReader) {
        section.read(root, "store", path: "store", into: &store, reader: &reader)
        if store.path.isEmpty { reader.problem("store.path", "must not be empty") }
        if store.maxFileBytes != 0 && store.maxFileBytes < 1 << 20 {
            reader.problem(
                "store.max_file_bytes", "must be 0 (no limit) or at least 1048576, got \(store.maxFileBytes)")
            store.maxFileBytes = 0
        }
    }
}

extension RingStore.AggregationSettings {
    /// The `aggregation` section's keys; the file gives the window in seconds and the retention
    /// in days, the store keeps both in milliseconds.
    public static let section = ConfigSection<Self>([
        .flag("enabled", \.enabled), .integer("window_s", \.windowMs, range: 1...3600, unit: 1000),
        .integer("lateness_ms", \.latenessMs, range: 0...3_600_000),
        .integer("retention_days", \.retentionMs, range: 1...3650, unit: 86_400_000),
        .integer("capacity_rows", \.capacityRows, range: 1_000...1_000_000_000),
    ])

    /// Reads the `aggregation` object of `root`: windows must roll up into whole hours.
    public static func read(_ root: JSONObject, into aggregation: inout Self, reader: inout ConfigReader) {
        section.read(root, "aggregation", path: "aggregation", into: &aggregation, reader: &reader)
        let windowS = aggregation.windowMs / 1000
        if 3600 % windowS != 0 {
            reader.problem(
                "aggregation.window_s",
                "must divide 3600 so windows roll up into hours (1, 2, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, ...), got \(windowS)"
            )
            aggregation.windowMs = 60_000
        }
    }
}
