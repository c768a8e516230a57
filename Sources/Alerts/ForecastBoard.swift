import Synchronization

/// The latest forecast of every gauge, written by the ingest thread and read by the API
/// (device detail, map feed, metrics).
public final class ForecastBoard: Sendable {
    private let table = Mutex<[String: LevelForecast]>([:])

    public init() {}

    public func set(_ sensor: String, _ forecast: LevelForecast) {
        table.withLock { $0[sensor] = forecast }
    }

    public func forecast(_ sensor: String) -> LevelForecast? {
        table.withLock { $0[sensor] }
    }

    public var all: [String: LevelForecast] { table.withLock { $0 } }
}
