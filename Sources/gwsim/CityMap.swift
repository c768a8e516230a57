import Foundation

/// Where the simulated fleet drives and where the simulated gauges stand: vehicles circle the
/// centre on routes of different radii; gauges stand on a ring that those routes cross, so
/// vehicles drive in and out of gauge circles (and get flooded-road advisories when it rains).
struct CityMap {
    var centerLat = 3.1390
    var centerLon = 101.6869

    static let metresPerDegreeLat = Double.pi * 6_371_008.8 / 180

    /// The point `east`, `north` metres from the centre.
    func point(east: Double, north: Double) -> (lat: Double, lon: Double) {
        let lat = centerLat + north / Self.metresPerDegreeLat
        let lon = centerLon + east / (Self.metresPerDegreeLat * cos(centerLat * .pi / 180))
        return (lat, lon)
    }

    /// Vehicle `index` circles at 300 m to 1 350 m from the centre.
    static func routeRadius(_ index: Int) -> Double { 300 + 150 * Double(index % 8) }

    /// Gauge `index` of `count` stands 600 m from the centre, evenly around it, covering 250 m.
    func gauge(_ index: Int, of count: Int) -> (lat: Double, lon: Double, radiusM: Double) {
        let angle = 2 * Double.pi * Double(index) / Double(max(1, count))
        let (lat, lon) = point(east: 600 * cos(angle), north: 600 * sin(angle))
        return (lat, lon, 250)
    }

    /// The `sensors` section for gatewayd's configuration that matches the simulated gauges.
    func sitesJSON(sensors: Int) -> String {
        let entries = (0..<sensors).map { index -> String in
            let site = gauge(index, of: sensors)
            return "\"drain-\(pad3(index))\": {\"lat\": \(rounded(site.lat, 6)), \"lon\": \(rounded(site.lon, 6)), "
                + "\"radius_m\": \(Int(site.radiusM))}"
        }
        return "{" + entries.joined(separator: ", ") + "}"
    }
}
