public import Geo

/// One message to one vehicle about one flooding gauge (`v1/advisory/{vin}`).
public struct Advisory: Sendable, Equatable {
    public enum State: String, Sendable {
        case warning, alarm, cleared
    }

    /// Unique per gauge incident and vehicle (`{gateway}-{sensor}-{incident start}-{vin}`,
    /// `-cleared` for the all-clear), so a receiver can drop a repeat.
    public var advisoryID: String
    public var vin: String
    public var sensor: String
    public var state: State
    public var levelCm: Double
    public var distanceM: Double
    public var tsMs: Int64
    /// When the gauge's incident began: who was told is stored under it, so that a restarted
    /// gateway still sends the `cleared` of this incident and of no other.
    public var incidentStartMs: Int64

    public init(
        advisoryID: String, vin: String, sensor: String, state: State, levelCm: Double, distanceM: Double, tsMs: Int64,
        incidentStartMs: Int64 = 0
    ) {
        self.incidentStartMs = incidentStartMs
        self.advisoryID = advisoryID
        self.vin = vin
        self.sensor = sensor
        self.state = state
        self.levelCm = levelCm
        self.distanceM = distanceM
        self.tsMs = tsMs
    }
}

/// Where a gauge is and how much road it speaks for.
public struct GaugeSite: Sendable, Equatable {
    public var sensor: String
    public var position: GeoPoint
    public var radiusM: Double

    public init(sensor: String, position: GeoPoint, radiusM: Double) {
        self.sensor = sensor
        self.position = position
        self.radiusM = radiusM
    }

    /// Radii above this would make one gauge cover a whole city; refused in config and API.
    public static let maxRadiusM: Double = 20_000
}
