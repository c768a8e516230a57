public import Geo

/// Joins vehicle positions with flooding gauges: which vehicle must be told, and when.
///
/// Pure and single-threaded (it runs on the ingest thread). Positions and gauge sites live in
/// a `GeoGrid`, so a position update looks only at the gauges whose circle can reach its cell,
/// and a gauge going into warning looks only at the vehicles in the cells its circle touches.
/// An *incident* runs from a gauge leaving `normal` until it returns: each vehicle inside the
/// circle during it gets one advisory (when the incident starts, or when it drives in later),
/// and every vehicle told gets a `cleared` advisory at the end. Escalation from warning to
/// alarm does not repeat the advisory.
public struct AdvisoryEngine: Sendable {
    public enum GaugeState: String, Sendable {
        case normal, warning, alarm
    }

    struct Incident {
        var state: Advisory.State
        var levelCm: Double
        var startMs: Int64
        /// Vehicles told, with their distance when told.
        var advised: [String: Double] = [:]
    }

    struct Vehicle {
        var position: GeoPoint
        var cell: GeoGrid.Cell
        /// The device time of the position, so a late (older) fix cannot replace it.
        var tsMs: Int64
    }

    let grid: GeoGrid
    let idPrefix: String
    private(set) var sites: [String: GaugeSite] = [:]
    private var siteCells: [GeoGrid.Cell: [String]] = [:]
    private var vehicles: [String: Vehicle] = [:]
    private var vehicleCells: [GeoGrid.Cell: Set<String>] = [:]
    private var incidents: [String: Incident] = [:]

    public init(idPrefix: String, grid: GeoGrid = GeoGrid()) {
        self.idPrefix = idPrefix
        self.grid = grid
    }

    public var vehicleCount: Int { vehicles.count }

    /// Drops the positions older than `cutoffMs` (by their own time): position retention
    /// reaches the engine's copy too. A vehicle dropped is no longer near anything; its next
    /// fix puts it back.
    public mutating func forgetPositions(olderThan cutoffMs: Int64) {
        for (vin, vehicle) in vehicles where vehicle.tsMs < cutoffMs { removeVehicle(vin) }
    }

    private mutating func removeVehicle(_ vin: String) {
        guard let vehicle = vehicles.removeValue(forKey: vin) else { return }
        vehicleCells[vehicle.cell]?.remove(vin)
        if vehicleCells[vehicle.cell]?.isEmpty == true { vehicleCells.removeValue(forKey: vehicle.cell) }
    }

    /// Forgets a vehicle entirely (erasure): its position, and that it was told of an incident
    /// (so it gets no `cleared`: the record of having told it is gone too).
    public mutating func forget(vin: String) {
        removeVehicle(vin)
        for sensor in incidents.keys { incidents[sensor]?.advised.removeValue(forKey: vin) }
    }

    public var activeIncidents: Int { incidents.count }

    /// Adds or moves a gauge. During an incident, vehicles now inside are told.
    public mutating func setSite(_ site: GaugeSite, tsMs: Int64) -> [Advisory] {
        removeSite(site.sensor)
        sites[site.sensor] = site
        for cell in grid.cells(around: site.position, radiusM: site.radiusM) {
            siteCells[cell, default: []].append(site.sensor)
        }
        return incidents[site.sensor] == nil ? [] : adviseVehiclesNear(site, tsMs: tsMs)
    }

    private mutating func removeSite(_ sensor: String) {
        guard let old = sites.removeValue(forKey: sensor) else { return }
        for cell in grid.cells(around: old.position, radiusM: old.radiusM) {
            siteCells[cell]?.removeAll { $0 == sensor }
            if siteCells[cell]?.isEmpty == true { siteCells[cell] = nil }
        }
    }

    /// A new position: an advisory for each flooding gauge whose circle it is now inside and
    /// that has not told this vehicle yet. A position older than the vehicle's newest (a late
    /// or replayed message) is about where it was, not where it is: it decides nothing.
    public mutating func vehicleMoved(vin: String, to position: GeoPoint, tsMs: Int64) -> [Advisory] {
        if let newest = vehicles[vin]?.tsMs, tsMs < newest { return [] }
        let cell = grid.cell(of: position)
        if let old = vehicles[vin], old.cell != cell {
            vehicleCells[old.cell]?.remove(vin)
            if vehicleCells[old.cell]?.isEmpty == true { vehicleCells[old.cell] = nil }
        }
        if vehicles[vin]?.cell != cell { vehicleCells[cell, default: []].insert(vin) }
        vehicles[vin] = Vehicle(position: position, cell: cell, tsMs: tsMs)
        guard !incidents.isEmpty, let candidates = siteCells[cell] else { return [] }
        var advisories: [Advisory] = []
        for sensor in candidates {
            guard var incident = incidents[sensor], incident.advised[vin] == nil, let site = sites[sensor] else {
                continue
            }
            let distance = site.position.distance(to: position)
            guard distance <= site.radiusM else { continue }
            incident.advised[vin] = distance
            incidents[sensor] = incident
            advisories.append(advisory(sensor, incident, vin: vin, distance: distance, tsMs: tsMs))
        }
        return advisories
    }

    /// A gauge's level state changed (after its dwell). Opens, updates or ends its incident.
    public mutating func gaugeChanged(sensor: String, state: GaugeState, levelCm: Double, tsMs: Int64) -> [Advisory] {
        switch state {
        case .normal:
            guard let incident = incidents.removeValue(forKey: sensor) else { return [] }
            return incident.advised.sorted { $0.key < $1.key }.map { vin, distance in
                Advisory(
                    advisoryID: "\(idPrefix)-\(sensor)-\(incident.startMs)-\(vin)-cleared", vin: vin, sensor: sensor,
                    state: .cleared, levelCm: levelCm, distanceM: distance, tsMs: tsMs,
                    incidentStartMs: incident.startMs)
            }
        case .warning, .alarm:
            let advisoryState: Advisory.State = state == .alarm ? .alarm : .warning
            if var incident = incidents[sensor] {
                incident.state = advisoryState
                incident.levelCm = levelCm
                incidents[sensor] = incident
                return []
            }
            incidents[sensor] = Incident(state: advisoryState, levelCm: levelCm, startMs: tsMs)
            guard let site = sites[sensor] else { return [] }
            return adviseVehiclesNear(site, tsMs: tsMs)
        }
    }

    private mutating func adviseVehiclesNear(_ site: GaugeSite, tsMs: Int64) -> [Advisory] {
        guard var incident = incidents[site.sensor] else { return [] }
        var advisories: [Advisory] = []
        for cell in grid.cells(around: site.position, radiusM: site.radiusM) {
            for vin in vehicleCells[cell] ?? [] where incident.advised[vin] == nil {
                guard let vehicle = vehicles[vin] else { continue }
                let distance = site.position.distance(to: vehicle.position)
                guard distance <= site.radiusM else { continue }
                incident.advised[vin] = distance
                advisories.append(advisory(site.sensor, incident, vin: vin, distance: distance, tsMs: tsMs))
            }
        }
        incidents[site.sensor] = incident
        return advisories.sorted { $0.vin < $1.vin }
    }

    private func advisory(_ sensor: String, _ incident: Incident, vin: String, distance: Double, tsMs: Int64)
        -> Advisory
    {
        Advisory(
            advisoryID: "\(idPrefix)-\(sensor)-\(incident.startMs)-\(vin)", vin: vin, sensor: sensor,
            state: incident.state, levelCm: incident.levelCm, distanceM: distance, tsMs: tsMs,
            incidentStartMs: incident.startMs)
    }

    /// A vehicle an earlier run told about a running incident (from the store): it is not told
    /// again, and gets the `cleared` when the incident ends even if it never reports again.
    /// Ignored unless the gauge's incident is the one it was told about.
    public mutating func restoreAdvised(sensor: String, incidentStartMs: Int64, vin: String, distanceM: Double) {
        guard var incident = incidents[sensor], incident.startMs == incidentStartMs else { return }
        incident.advised[vin] = distanceM
        incidents[sensor] = incident
    }

    /// The newest position of every vehicle, for the map feed.
    public var positions: [(vin: String, position: GeoPoint)] {
        vehicles.map { ($0.key, $0.value.position) }
    }
}
