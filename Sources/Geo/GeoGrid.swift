#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A fixed grid over latitude and longitude, for finding what is near a point without
/// looking at everything: a position maps to one cell; a circle to the cells its bounding
/// box touches.
public struct GeoGrid: Sendable {
    public struct Cell: Hashable, Sendable {
        public var row: Int32
        public var column: Int32
    }

    /// Cell edge in degrees (0.01° ≈ 1.1 km north–south).
    public let cellDegrees: Double

    public init(cellDegrees: Double = 0.01) {
        precondition(cellDegrees > 0)
        self.cellDegrees = cellDegrees
    }

    public func cell(of point: GeoPoint) -> Cell {
        Cell(
            row: Int32((point.lat / cellDegrees).rounded(.down)),
            column: Int32((point.lon / cellDegrees).rounded(.down)))
    }

    /// Every cell that a circle of `radiusM` around `center` can reach (its bounding box,
    /// widened for the latitude where a degree of longitude is shortest).
    public func cells(around center: GeoPoint, radiusM: Double) -> [Cell] {
        let dLat = radiusM / 110_574  // metres per degree of latitude at the equator (the fewest)
        let maxLat = min(89.9, abs(center.lat) + dLat)
        let dLon = min(180, radiusM / (111_320 * cos(maxLat * .pi / 180)))
        let low = cell(of: GeoPoint(lat: max(-90, center.lat - dLat), lon: max(-180, center.lon - dLon)))
        let high = cell(of: GeoPoint(lat: min(90, center.lat + dLat), lon: min(180, center.lon + dLon)))
        var result: [Cell] = []
        result.reserveCapacity(Int(high.row - low.row + 1) * Int(high.column - low.column + 1))
        for row in low.row...high.row {
            for column in low.column...high.column { result.append(Cell(row: row, column: column)) }
        }
        return result
    }
}
