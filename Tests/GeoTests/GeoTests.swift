import Advisories
import Foundation
import Geo
import Testing

@Suite struct HaversineTests {
    /// Reference distances from outside this code: Rosetta Code's haversine example (BNA → LAX,
    /// 2 887.26 km with R = 6 372.8 km, scaled to our radius), and exact geometry on a sphere.
    static let vectors: [(String, GeoPoint, GeoPoint, Double, Double)] = [
        (
            "BNA to LAX", GeoPoint(lat: 36.12, lon: -86.67), GeoPoint(lat: 33.94, lon: -118.40),
            2_887_259.95 * GeoPoint.earthRadiusM / 6_372_800, 1
        ),
        (
            "one degree of latitude", GeoPoint(lat: 0, lon: 0), GeoPoint(lat: 1, lon: 0),
            Double.pi * GeoPoint.earthRadiusM / 180, 0.01
        ),
        (
            "one degree of longitude at 60°", GeoPoint(lat: 60, lon: 10), GeoPoint(lat: 60, lon: 11),
            2 * GeoPoint.earthRadiusM * asin(cos(Double.pi / 3) * sin(Double.pi / 360)), 0.01
        ),
        ("same point", GeoPoint(lat: 3.139, lon: 101.6869), GeoPoint(lat: 3.139, lon: 101.6869), 0, 0),
        (
            "across a street in Kuala Lumpur", GeoPoint(lat: 3.1390, lon: 101.6869),
            GeoPoint(lat: 3.1390, lon: 101.6879),
            2 * GeoPoint.earthRadiusM * asin(cos(3.139 * Double.pi / 180) * sin(0.001 * Double.pi / 360)), 0.001
        ),
        ("antipodes", GeoPoint(lat: 0, lon: 0), GeoPoint(lat: 0, lon: 180), Double.pi * GeoPoint.earthRadiusM, 0.01),
    ]

    @Test(arguments: vectors)
    func distances(_ name: String, _ a: GeoPoint, _ b: GeoPoint, _ expected: Double, _ tolerance: Double) {
        #expect(abs(a.distance(to: b) - expected) <= tolerance, "\(name): \(a.distance(to: b)) vs \(expected)")
        #expect(abs(a.distance(to: b) - b.distance(to: a)) < 1e-9)
    }

    @Test func gridCellsCoverTheCircle() {
        let grid = GeoGrid(cellDegrees: 0.01)
        let center = GeoPoint(lat: 3.139, lon: 101.6869)
        let cells = Set(grid.cells(around: center, radiusM: 1_500))
        // Every point on (and just inside) the circle falls in a listed cell.
        for step in 0..<360 {
            let bearing = Double(step) * .pi / 180
            let d = 1_499.9 / GeoPoint.earthRadiusM
            let lat1 = center.lat * .pi / 180
            let lon1 = center.lon * .pi / 180
            let lat2 = asin(sin(lat1) * cos(d) + cos(lat1) * sin(d) * cos(bearing))
            let lon2 = lon1 + atan2(sin(bearing) * sin(d) * cos(lat1), cos(d) - sin(lat1) * sin(lat2))
            let point = GeoPoint(lat: lat2 * 180 / .pi, lon: lon2 * 180 / .pi)
            #expect(abs(center.distance(to: point) - 1_499.9) < 0.01)
            #expect(cells.contains(grid.cell(of: point)), "bearing \(step)°")
        }
        #expect(cells.count <= 16)
    }
}

@Suite struct AdvisoryEngineTests {
    let center = GeoPoint(lat: 3.1390, lon: 101.6869)

    /// A point `metres` north of the centre.
    func north(_ metres: Double) -> GeoPoint {
        GeoPoint(lat: center.lat + metres / (Double.pi * GeoPoint.earthRadiusM / 180), lon: center.lon)
    }

    func engine() -> AdvisoryEngine {
        var engine = AdvisoryEngine(idPrefix: "gw1")
        _ = engine.setSite(GaugeSite(sensor: "drain-7", position: center, radiusM: 500), tsMs: 0)
        return engine
    }

    /// Position retention reaches the engine: a vehicle whose newest fix is older than the
    /// cutoff is forgotten, so an incident starting later does not advise it on that old fix.
    @Test func forgottenPositionsDecideNothing() {
        var engine = engine()
        #expect(engine.vehicleMoved(vin: "OLD", to: north(100), tsMs: 1).isEmpty)
        #expect(engine.vehicleMoved(vin: "NEW", to: north(200), tsMs: 50).isEmpty)
        engine.forgetPositions(olderThan: 10)
        #expect(engine.vehicleCount == 1)
        let raised = engine.gaugeChanged(sensor: "drain-7", state: .alarm, levelCm: 260, tsMs: 60)
        #expect(raised.map(\.vin) == ["NEW"])
    }

    @Test func insideOutsideAndDrivingInLater() {
        var engine = engine()
        #expect(engine.vehicleMoved(vin: "INSIDE", to: north(499.9), tsMs: 1).isEmpty, "no incident yet")
        #expect(engine.vehicleMoved(vin: "OUTSIDE", to: north(500.1), tsMs: 1).isEmpty)
        #expect(engine.vehicleMoved(vin: "LATER", to: north(2_000), tsMs: 1).isEmpty)

        let raised = engine.gaugeChanged(sensor: "drain-7", state: .alarm, levelCm: 260, tsMs: 10)
        #expect(raised.map(\.vin) == ["INSIDE"])
        #expect(raised.first?.state == .alarm)
        #expect(raised.first?.advisoryID == "gw1-drain-7-10-INSIDE")
        #expect(abs((raised.first?.distanceM ?? 0) - 499.9) < 0.01)

        // Moving inside, or the gauge staying in alarm, repeats nothing.
        #expect(engine.vehicleMoved(vin: "INSIDE", to: north(100), tsMs: 11).isEmpty)
        #expect(engine.gaugeChanged(sensor: "drain-7", state: .alarm, levelCm: 270, tsMs: 12).isEmpty)
        #expect(engine.vehicleMoved(vin: "OUTSIDE", to: north(500.2), tsMs: 13).isEmpty)
        // Driving in later: one advisory, with the incident's state and level.
        let entered = engine.vehicleMoved(vin: "LATER", to: north(300), tsMs: 14)
        #expect(entered.map(\.vin) == ["LATER"])
        #expect(entered.first?.levelCm == 270)
        // Leaving and coming back within the same incident: nothing more.
        #expect(engine.vehicleMoved(vin: "LATER", to: north(3_000), tsMs: 15).isEmpty)
        #expect(engine.vehicleMoved(vin: "LATER", to: north(10), tsMs: 16).isEmpty)

        let cleared = engine.gaugeChanged(sensor: "drain-7", state: .normal, levelCm: 40, tsMs: 20)
        #expect(cleared.map(\.vin) == ["INSIDE", "LATER"])
        #expect(cleared.allSatisfy { $0.state == .cleared && $0.advisoryID.hasSuffix("-cleared") })
        #expect(engine.activeIncidents == 0)
        // A new incident tells the vehicles again, under a new id.
        let again = engine.gaugeChanged(sensor: "drain-7", state: .warning, levelCm: 160, tsMs: 30)
        #expect(Set(again.map(\.vin)) == ["INSIDE", "LATER"])
        #expect(again.first?.advisoryID.contains("-30-") == true)
    }

    /// obd-vehicle.md: "The gateway decides from your newest `gps` position." A late fix from
    /// inside the circle, older than the one outside, must not advise.
    @Test func aLatePositionDecidesNothing() {
        var engine = engine()
        _ = engine.gaugeChanged(sensor: "drain-7", state: .alarm, levelCm: 260, tsMs: 10)
        #expect(engine.vehicleMoved(vin: "V1", to: north(600), tsMs: 60_000).isEmpty)
        #expect(engine.vehicleMoved(vin: "V1", to: north(100), tsMs: 30_000).isEmpty, "older than the newest")
        #expect(engine.positions.first?.position == north(600))
        // A newer fix inside is advised, with its own distance and time.
        let told = engine.vehicleMoved(vin: "V1", to: north(400), tsMs: 61_000)
        #expect(told.map(\.tsMs) == [61_000])
        #expect(abs((told.first?.distanceM ?? 0) - 400) < 0.01)
    }

    /// Who was told survives a restart (the store gives it back): the `cleared` reaches a
    /// vehicle that never reports again, and nobody is told twice.
    @Test func restoredVehiclesGetTheirClearedAndNoRepeat() {
        var engine = engine()
        _ = engine.gaugeChanged(sensor: "drain-7", state: .alarm, levelCm: 260, tsMs: 10)
        engine.restoreAdvised(sensor: "drain-7", incidentStartMs: 10, vin: "PARKED", distanceM: 120)
        engine.restoreAdvised(sensor: "drain-7", incidentStartMs: 9, vin: "OLD-INCIDENT", distanceM: 50)
        #expect(engine.vehicleMoved(vin: "PARKED", to: north(120), tsMs: 20).isEmpty, "told before the restart")
        let cleared = engine.gaugeChanged(sensor: "drain-7", state: .normal, levelCm: 40, tsMs: 30)
        #expect(cleared.map(\.vin) == ["PARKED"])
        #expect(cleared.first?.advisoryID == "gw1-drain-7-10-PARKED-cleared")
        #expect(cleared.first?.incidentStartMs == 10)
    }

    @Test func gaugesWithoutASiteAndMovedSites() {
        var engine = engine()
        _ = engine.vehicleMoved(vin: "V1", to: north(1_000), tsMs: 1)
        #expect(engine.gaugeChanged(sensor: "unplaced", state: .alarm, levelCm: 300, tsMs: 2).isEmpty)
        #expect(engine.gaugeChanged(sensor: "drain-7", state: .warning, levelCm: 160, tsMs: 3).isEmpty)
        // The gauge's radius is widened during the incident: the vehicle is now inside.
        let widened = engine.setSite(GaugeSite(sensor: "drain-7", position: center, radiusM: 1_200), tsMs: 4)
        #expect(widened.map(\.vin) == ["V1"])
    }

    @Test func thousandsOfVehiclesOnlyTheNearOnesAreTold() {
        var engine = AdvisoryEngine(idPrefix: "gw1")
        for index in 0..<1_000 {
            let site = GaugeSite(
                sensor: "g\(index)",
                position: GeoPoint(lat: 3.0 + Double(index % 40) * 0.01, lon: 101.5 + Double(index / 40) * 0.01),
                radiusM: 300)
            _ = engine.setSite(site, tsMs: 0)
        }
        var generator = SystemRandomNumberGenerator()
        for index in 0..<10_000 {
            let point = GeoPoint(
                lat: 3.0 + Double.random(in: 0..<0.4, using: &generator),
                lon: 101.5 + Double.random(in: 0..<0.25, using: &generator))
            _ = engine.vehicleMoved(vin: "V\(index)", to: point, tsMs: 1)
        }
        let told = engine.gaugeChanged(sensor: "g0", state: .alarm, levelCm: 300, tsMs: 2)
        #expect(told.allSatisfy { $0.distanceM <= 300 && $0.sensor == "g0" })
        #expect(engine.vehicleCount == 10_000)
    }
}
