/// A named measured quantity, with a number that is stable across releases.
///
/// The number is what the store writes in each reading row (small and fixed), the name is
/// what people and SQL views see. Numbers are never reused.
public struct Signal: Sendable, Hashable, CustomStringConvertible {
    public let id: Int
    public let name: String
    public let unit: String

    public var description: String { name }

    public static let milOn = Signal(id: 1, name: "mil_on", unit: "bool")
    public static let dtcCount = Signal(id: 2, name: "dtc_count", unit: "count")
    public static let engineLoad = Signal(id: 3, name: "engine_load_pct", unit: "%")
    public static let coolantTemp = Signal(id: 4, name: "coolant_temp_c", unit: "°C")
    public static let intakeMAP = Signal(id: 5, name: "intake_map_kpa", unit: "kPa")
    public static let engineRPM = Signal(id: 6, name: "engine_rpm", unit: "rpm")
    public static let speed = Signal(id: 7, name: "speed_kmh", unit: "km/h")
    public static let intakeAirTemp = Signal(id: 8, name: "intake_air_temp_c", unit: "°C")
    public static let maf = Signal(id: 9, name: "maf_gps", unit: "g/s")
    public static let throttle = Signal(id: 10, name: "throttle_pct", unit: "%")
    public static let runTime = Signal(id: 11, name: "run_time_s", unit: "s")
    public static let fuelLevel = Signal(id: 12, name: "fuel_level_pct", unit: "%")
    public static let moduleVoltage = Signal(id: 13, name: "module_voltage_v", unit: "V")
    public static let ambientAirTemp = Signal(id: 14, name: "ambient_air_temp_c", unit: "°C")
    public static let hybridBattery = Signal(id: 15, name: "hybrid_battery_pct", unit: "%")
    public static let oilTemp = Signal(id: 16, name: "oil_temp_c", unit: "°C")
    public static let fuelRate = Signal(id: 17, name: "fuel_rate_lph", unit: "L/h")
    public static let odometer = Signal(id: 18, name: "odometer_km", unit: "km")

    public static let waterLevel = Signal(id: 30, name: "level_cm", unit: "cm")
    public static let batteryVoltage = Signal(id: 31, name: "battery_v", unit: "V")
    public static let rainRate = Signal(id: 32, name: "rain_mm_h", unit: "mm/h")

    /// A vehicle's position (`v1/obd/{vin}/gps`), WGS 84.
    public static let latitude = Signal(id: 40, name: "lat_deg", unit: "°")
    public static let longitude = Signal(id: 41, name: "lon_deg", unit: "°")
    public static let gpsSpeed = Signal(id: 42, name: "gps_speed_kmh", unit: "km/h")
    public static let heading = Signal(id: 43, name: "heading_deg", unit: "°")

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
