#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A WGS 84 position in degrees.
public struct GeoPoint: Sendable, Equatable {
    public var lat: Double
    public var lon: Double

    public init(lat: Double, lon: Double) {
        self.lat = lat
        self.lon = lon
    }

    /// Mean Earth radius (IUGG), metres.
    public static let earthRadiusM = 6_371_008.8

    /// Great-circle distance in metres (haversine): within 0.5 % of the ellipsoid, far inside
    /// what a gauge's radius of road needs.
    public func distance(to other: GeoPoint) -> Double {
        let phi1 = lat * .pi / 180
        let phi2 = other.lat * .pi / 180
        let dPhi = (other.lat - lat) * .pi / 180
        let dLambda = (other.lon - lon) * .pi / 180
        let a = sin(dPhi / 2) * sin(dPhi / 2) + cos(phi1) * cos(phi2) * sin(dLambda / 2) * sin(dLambda / 2)
        return 2 * Self.earthRadiusM * asin(min(1, sqrt(a)))
    }
}
