/// All alert machines of a gateway, keyed by device, with per-sensor settings.
///
/// Pure: the ingest thread feeds it decoded readings and the clock, and writes the events it
/// returns in the same transaction as the readings. Owned by that one thread.
public struct AlertEngine: Sendable {
    public var waterDefaults: WaterAlertSettings
    public var waterOverrides: [String: WaterAlertSettings]
    public var coolantLimitC: Double
    private var water: [String: WaterAlertMachine] = [:]
    private var vehicles: [String: VehicleAlertMachine] = [:]
    private var restored: [String: [ActiveAlert]] = [:]
    /// Sensors whose level state was published since start (the first reading publishes it).
    private var announced: Set<String> = []

    /// An alert raised and not yet cleared, as the store keeps it across restarts.
    public struct ActiveAlert: Sendable, Equatable {
        public var device: String
        public var type: AlertType
        public var subject: String
        public var state: AlertState

        public init(device: String, type: AlertType, subject: String, state: AlertState) {
            self.device = device
            self.type = type
            self.subject = subject
            self.state = state
        }
    }

    /// A water sensor's level state to publish (retained) for sirens and signboards.
    /// The gauge's current trend forecast (`.none` for a sensor not seen yet).
    public func forecast(sensor: String) -> LevelForecast {
        water[sensor]?.forecast ?? .none
    }

    public struct LevelPublication: Sendable, Equatable {
        public var sensor: String
        public var state: WaterAlertMachine.LevelState
        public var levelCm: Double
        public var tsMs: Int64
    }

    public init(waterDefaults: WaterAlertSettings, waterOverrides: [String: WaterAlertSettings], coolantLimitC: Double)
    {
        self.waterDefaults = waterDefaults
        self.waterOverrides = waterOverrides
        self.coolantLimitC = coolantLimitC
    }

    /// Alerts that were active when the gateway stopped; applied when each device is next seen.
    public mutating func restore(_ active: [ActiveAlert]) {
        restored = Dictionary(grouping: active, by: \.device)
    }

    /// A water reading. Returns the events and, on the sensor's first reading since start and
    /// on every level change, the state to publish.
    public mutating func observeWater(
        sensor: String, levelCm: Double?, batteryV: Double?, tsMs: Int64, nowMs: Int64
    ) -> (events: [AlertEvent], publication: LevelPublication?) {
        let isNew = announced.insert(sensor).inserted
        ensureWater(sensor, nowMs: nowMs)
        let before = water[sensor]!.level.current
        let events = water[sensor]!.observe(levelCm: levelCm, batteryV: batteryV, tsMs: tsMs, nowMs: nowMs)
        let machine = water[sensor]!
        guard let level = machine.lastLevelCm, isNew || machine.level.current != before else { return (events, nil) }
        return (
            events,
            LevelPublication(sensor: sensor, state: machine.level.current, levelCm: level, tsMs: machine.lastTsMs)
        )
    }

    private mutating func ensureWater(_ sensor: String, nowMs: Int64) {
        guard water[sensor] == nil else { return }
        var machine = WaterAlertMachine(sensor: sensor, settings: waterOverrides[sensor] ?? waterDefaults, nowMs: nowMs)
        if let active = restored.removeValue(forKey: sensor) {
            let level = active.first { $0.type == .waterLevel }
            machine.restore(
                level: level?.state == .alarm ? .alarm : level?.state == .warning ? .warning : .normal,
                rising: active.contains { $0.type == .riseRate },
                batteryLow: active.contains { $0.type == .lowBattery },
                stale: active.contains { $0.type == .stale },
                forecast: active.contains { $0.type == .forecast })
        }
        water[sensor] = machine
    }

    /// How far back `warm` wants stored levels: the longest trend or rise window configured.
    public var warmWindowMs: Int64 {
        ([waterDefaults] + waterOverrides.values).map { max($0.forecastWindowS, $0.riseWindowS) * 1000 }.max() ?? 0
    }

    /// Rebuilds each gauge's trend and rise history from its stored levels (in time order) at
    /// start, after `restore`. The stale timer starts from `nowMs`, as for a gauge seen now.
    public mutating func warm(_ levels: [String: [(tsMs: Int64, levelCm: Double)]], nowMs: Int64) {
        for (sensor, points) in levels where !points.isEmpty {
            ensureWater(sensor, nowMs: nowMs)
            water[sensor]?.warm(levels: points)
        }
    }

    /// Sensors whose machine exists (seen since start, or warmed from the store).
    public var waterSensors: [String] { Array(water.keys) }

    public mutating func observeVehicle(vin: String, milOn: Double?, coolantC: Double?, tsMs: Int64) -> [AlertEvent] {
        let index = ensureVehicle(vin)
        return vehicles.values[index].observe(milOn: milOn, coolantC: coolantC, tsMs: tsMs)
    }

    public mutating func observeCodes(vin: String, codes: [String], tsMs: Int64) -> [AlertEvent] {
        let index = ensureVehicle(vin)
        return vehicles.values[index].observe(codes: codes, tsMs: tsMs)
    }

    /// Forgets a vehicle (erasure): its raised alerts are dropped without a `cleared`, as the
    /// store drops their record.
    public mutating func forget(vin: String) {
        vehicles.removeValue(forKey: vin)
        restored.removeValue(forKey: vin)
    }

    /// One lookup for a known vehicle (this runs for every vehicle message), and the machine
    /// is changed in place through its index.
    private mutating func ensureVehicle(_ vin: String) -> [String: VehicleAlertMachine].Index {
        if let index = vehicles.index(forKey: vin) { return index }
        var machine = VehicleAlertMachine(vin: vin, coolantLimitC: coolantLimitC)
        if let active = restored.removeValue(forKey: vin) {
            machine.restore(
                codes: Set(active.filter { $0.type == .dtc }.map(\.subject)),
                milOn: active.contains { $0.type == .milOn }, overheating: active.contains { $0.type == .coolant })
        }
        vehicles[vin] = machine
        return vehicles.index(forKey: vin)!
    }

    /// Silent sensors. Call about once a second.
    public mutating func tick(nowMs: Int64) -> [AlertEvent] {
        var events: [AlertEvent] = []
        // In place, by index: iterating `water.keys` (or `water.values.indices`) holds a second
        // reference to the table, and the first write through it copied all of it each tick.
        var index = water.startIndex
        while index != water.endIndex {
            if let event = water.values[index].tick(nowMs: nowMs) { events.append(event) }
            water.formIndex(after: &index)
        }
        return events
    }

}
