/// A named measured quantity, with a number that is stable across releases.
///
/// The number is what the store writes in each reading row (small and fixed), the name is
/// what people and SQL views see. Numbers are never reused.
public struct Signal: Sendable, Hashable, CustomStringConvertible {
    public let id: Int

    // Only the number is stored: a `Reading` is then 16 bytes with nothing to retain, where
    // a name and a unit held as strings cost four reference-count operations each time a
    // reading was copied (about 430 instructions a reading under callgrind).
    private init(id: Int) {
        self.id = id
    }

    public var name: String { Self.names[id].name }
    public var unit: String { Self.names[id].unit }
    public var description: String { name }

    public static let milOn = Signal(id: 1)
    public static let dtcCount = Signal(id: 2)
    public static let engineLoad = Signal(id: 3)
    public static let coolantTemp = Signal(id: 4)
    public static let intakeMAP = Signal(id: 5)
    public static let engineRPM = Signal(id: 6)
    public static let speed = Signal(id: 7)
    public static let intakeAirTemp = Signal(id: 8)
    public static let maf = Signal(id: 9)
    public static let throttle = Signal(id: 10)
    public static let runTime = Signal(id: 11)
    public static let fuelLevel = Signal(id: 12)
    public static let moduleVoltage = Signal(id: 13)
    public static let ambientAirTemp = Signal(id: 14)
    public static let hybridBattery = Signal(id: 15)
    public static let oilTemp = Signal(id: 16)
    public static let fuelRate = Signal(id: 17)
    public static let odometer = Signal(id: 18)

    public static let waterLevel = Signal(id: 30)
    public static let batteryVoltage = Signal(id: 31)
    public static let rainRate = Signal(id: 32)

    /// A vehicle's position (`v1/obd/{vin}/gps`), WGS 84.
    public static let latitude = Signal(id: 40)
    public static let longitude = Signal(id: 41)
    public static let gpsSpeed = Signal(id: 42)
    public static let heading = Signal(id: 43)

    /// Name and unit by id (ids without a signal hold empty strings).
    private static let names: [(name: String, unit: String)] = {
        let known: [(Int, String, String)] = [
            (1, "mil_on", "bool"),
            (2, "dtc_count", "count"),
            (3, "engine_load_pct", "%"),
            (4, "coolant_temp_c", "°C"),
            (5, "intake_map_kpa", "kPa"),
            (6, "engine_rpm", "rpm"),
            (7, "speed_kmh", "km/h"),
            (8, "intake_air_temp_c", "°C"),
            (9, "maf_gps", "g/s"),
            (10, "throttle_pct", "%"),
            (11, "run_time_s", "s"),
            (12, "fuel_level_pct", "%"),
            (13, "module_voltage_v", "V"),
            (14, "ambient_air_temp_c", "°C"),
            (15, "hybrid_battery_pct", "%"),
            (16, "oil_temp_c", "°C"),
            (17, "fuel_rate_lph", "L/h"),
            (18, "odometer_km", "km"),
            (30, "level_cm", "cm"),
            (31, "battery_v", "V"),
            (32, "rain_mm_h", "mm/h"),
            (40, "lat_deg", "°"),
            (41, "lon_deg", "°"),
            (42, "gps_speed_kmh", "km/h"),
            (43, "heading_deg", "°"),
        ]
        var table = [(name: String, unit: String)](repeating: ("", ""), count: (known.map(\.0).max() ?? 0) + 1)
        for (id, name, unit) in known { table[id] = (name, unit) }
        return table
    }()

    /// The kind of device that reports this signal.
    public var kind: DeviceKind { (30..<40).contains(id) ? .water : .vehicle }

    /// Whether windows of it mean something: a mean latitude or heading does not, so
    /// positions are stored raw but not aggregated.
    public var isAggregated: Bool { id != 40 && id != 41 && id != 43 }

    /// Every signal the gateway knows, in id order: the store seeds its `signals` table from it.
    public static let catalogue: [Signal] = [
        .milOn, .dtcCount, .engineLoad, .coolantTemp, .intakeMAP, .engineRPM, .speed, .intakeAirTemp, .maf,
        .throttle, .runTime, .fuelLevel, .moduleVoltage, .ambientAirTemp, .hybridBattery, .oilTemp, .fuelRate,
        .odometer, .waterLevel, .batteryVoltage, .rainRate, .latitude, .longitude, .gpsSpeed, .heading,
    ]

    /// The signal's position in `catalogue`: lets per-device tables be small arrays instead of
    /// dictionaries keyed by signal.
    public var slot: Int { Signal.slots[id] }

    private static let slots: [Int] = {
        var table = [Int](repeating: 0, count: (catalogue.map(\.id).max() ?? 0) + 1)
        for (index, signal) in catalogue.enumerated() { table[signal.id] = index }
        return table
    }()

    public static func named(_ name: String) -> Signal? {
        catalogue.first { $0.name == name }
    }
}

/// One decoded value of one signal. Device, time and sequence number are the message's.
public struct Reading: Sendable, Equatable {
    public let signal: Signal
    public let value: Double

    public init(signal: Signal, value: Double) {
        self.signal = signal
        self.value = value
    }
}
