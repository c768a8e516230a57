import Foundation
import Telemetry

/// A small deterministic random generator (SplitMix64), so a simulated fleet is the same run
/// after run for a given seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A vehicle that drives: speed follows a target that changes now and then (stops at lights,
/// cruising), the engine warms up, fuel goes down and the odometer up. Each step yields the
/// raw OBD-II bytes a telematics unit would read off the bus.
struct VehicleModel {
    let vin: String
    let hybrid: Bool
    var seq: UInt32 = 0
    var speed = 0.0
    var targetSpeed = 0.0
    var coolant: Double
    var ambient: Double
    var fuel: Double
    var odometerHm: Double
    var runTime = 0.0
    var troubleCodes: [UInt16] = []
    var helloSent = false
    /// Position on its circular route around the map's centre.
    let routeRadiusM: Double
    var angle: Double

    static let possibleCodes: [UInt16] = [0x0301, 0x0171, 0x0420, 0x4123, 0xC123, 0x8100, 0x0128]

    init(index: Int, random: inout SplitMix64) {
        vin = VehicleModel.makeVIN(index)
        routeRadiusM = CityMap.routeRadius(index)
        angle = Double(index) * 2.399  // golden angle: spread around the centre
        hybrid = index % 4 == 0
        ambient = Double.random(in: 18...34, using: &random)
        coolant = ambient
        fuel = Double.random(in: 20...100, using: &random)
        odometerHm = Double.random(in: 50_000...3_000_000, using: &random)
    }

    /// A valid VIN that encodes the index (no I, O, Q), e.g. `1HGCM82633A000001`.
    static func makeVIN(_ index: Int) -> String {
        let alphabet = Array("0123456789ABCDEFGHJKLMNPRSTUVWXYZ")
        var suffix = ""
        var value = index
        for _ in 0..<6 {
            suffix = String(alphabet[value % alphabet.count]) + suffix
            value /= alphabet.count
        }
        return "1HGCM82633A" + suffix
    }

    mutating func step(seconds: Double, random: inout SplitMix64) {
        if Double.random(in: 0..<1, using: &random) < 0.05 * seconds {
            targetSpeed = [0, 0, 30, 50, 60, 80, 100].randomElement(using: &random)!
        }
        let accel = targetSpeed > speed ? 2.5 : -4.0
        speed = max(0, min(130, speed + accel * 3.6 * seconds))
        if abs(speed - targetSpeed) < 3 { speed = targetSpeed + Double.random(in: -1...1, using: &random) }
        speed = max(0, speed)
        coolant += (90 - coolant) * min(1, 0.01 * seconds) + Double.random(in: -0.3...0.3, using: &random)
        fuel = max(0, fuel - speed * 0.00002 * seconds - 0.0005 * seconds)
        odometerHm += speed / 360 * seconds
        angle += speed / 3.6 * seconds / routeRadiusM
        runTime += seconds
        if troubleCodes.count < 3, Double.random(in: 0..<1, using: &random) < 0.0005 {
            troubleCodes.append(Self.possibleCodes.randomElement(using: &random)!)
        }
    }

    func pidsJSON(ts: Int64, random: inout SplitMix64) -> String {
        func hex(_ value: Int, bytes: Int) -> String {
            let clamped = max(0, min(value, (1 << (8 * bytes)) - 1))
            let digits = String(clamped, radix: 16, uppercase: true)
            return String(repeating: "0", count: bytes * 2 - digits.count) + digits
        }
        let rpm = speed < 1 ? 750 + Double.random(in: -20...20, using: &random) : 900 + speed * 25
        let load = min(100, 15 + speed * 0.5 + Double.random(in: 0...10, using: &random))
        let throttle = min(100, 12 + (targetSpeed > speed ? 25 : 5) + Double.random(in: 0...5, using: &random))
        let maf = rpm * load / 1000
        let mil = troubleCodes.isEmpty ? 0 : 0x80 | troubleCodes.count
        var pids: [(String, String)] = [
            ("01", hex(mil, bytes: 1) + "076504"),
            ("04", hex(Int(load * 255 / 100), bytes: 1)),
            ("05", hex(Int(coolant) + 40, bytes: 1)),
            ("0B", hex(Int(30 + load * 0.7), bytes: 1)),
            ("0C", hex(Int(rpm * 4), bytes: 2)),
            ("0D", hex(Int(speed), bytes: 1)),
            ("0F", hex(Int(ambient + 8) + 40, bytes: 1)),
            ("10", hex(Int(maf * 100), bytes: 2)),
            ("11", hex(Int(throttle * 255 / 100), bytes: 1)),
            ("1F", hex(Int(runTime), bytes: 2)),
            ("2F", hex(Int(fuel * 255 / 100), bytes: 1)),
            ("42", hex(Int((13.8 + Double.random(in: -0.3...0.3, using: &random)) * 1000), bytes: 2)),
            ("46", hex(Int(ambient) + 40, bytes: 1)),
            ("5C", hex(Int(coolant - 5) + 40, bytes: 1)),
            ("5E", hex(Int(maf * 0.35 * 20), bytes: 2)),
            ("A6", hex(Int(odometerHm), bytes: 4)),
        ]
        if hybrid { pids.append(("5B", hex(Int(Double.random(in: 40...90, using: &random) * 255 / 100), bytes: 1))) }
        let body = pids.map { "\"\($0.0)\":\"\($0.1)\"" }.joined(separator: ",")
        return "{\"ts\":\(ts),\"seq\":\(seq),\"pids\":{\(body)}}"
    }

    var readingsPerMessage: Int { hybrid ? 18 : 17 }

    func gpsJSON(ts: Int64, map: CityMap) -> String {
        let (lat, lon) = map.point(east: routeRadiusM * cos(angle), north: routeRadiusM * sin(angle))
        // Counter-clockwise around the centre: the course is the angle, mirrored, from north.
        let heading = (-angle * 180 / .pi).truncatingRemainder(dividingBy: 360)
        return "{\"ts\":\(ts),\"seq\":\(seq),\"lat\":\(rounded(lat, 6)),\"lon\":\(rounded(lon, 6)),"
            + "\"speed_kmh\":\(rounded(speed, 1)),\"heading_deg\":\(rounded(heading < 0 ? heading + 360 : heading, 1))}"
    }

    func dtcJSON(ts: Int64) -> String {
        let hex = troubleCodes.map { code -> String in
            let digits = String(code, radix: 16, uppercase: true)
            return String(repeating: "0", count: 4 - digits.count) + digits
        }.joined()
        return "{\"ts\":\(ts),\"seq\":\(seq),\"dtc\":\"\(hex)\"}"
    }

    /// Sent on every connect; `seq` is the next data message's, as the protocol asks.
    var helloJSON: String {
        "{\"seq\":\(seq &+ 1),\"fw\":\"1.4.2\",\"hw\":\"\(hybrid ? "obd-x1h" : "obd-x1")\",\"model\":\"\(hybrid ? "city hybrid bus" : "fleet car")\"}"
    }
}

/// A flood gauge: a dry-weather level with rain events that raise it and a slow recession
/// afterwards, plus a battery that drains.
struct WaterSensorModel {
    let id: String
    var seq: UInt32 = 0
    let baseline: Double
    var level: Double
    var rain = 0.0
    var battery: Double

    init(index: Int, random: inout SplitMix64) {
        id = "drain-\(pad3(index))"
        let dryLevel = Double.random(in: 10...60, using: &random)
        baseline = dryLevel
        level = dryLevel
        battery = Double.random(in: 3.55...3.95, using: &random)
    }

    /// A downpour from 5 s to 45 s of simulated time (the first gauge in `--flood-demo`), so a
    /// short run shows a gauge going into alarm, vehicles being advised, and the all-clear.
    var demoStorm = false
    var elapsed = 0.0

    mutating func step(seconds: Double, random: inout SplitMix64) {
        elapsed += seconds
        if demoStorm {
            rain = (5..<45).contains(elapsed) ? 150 : 0
            level += rain * 0.02 * seconds - (level - baseline) * (rain > 0 ? 0.003 : 0.03) * seconds
            level = min(9_999, max(-99, level))
            return
        }
        if rain == 0, Double.random(in: 0..<1, using: &random) < 0.002 * seconds {
            rain = Double.random(in: 5...80, using: &random)
        } else if rain > 0, Double.random(in: 0..<1, using: &random) < 0.01 * seconds {
            rain = 0
        }
        level += rain * 0.02 * seconds - (level - baseline) * 0.003 * seconds
        level += Double.random(in: -0.2...0.2, using: &random)
        level = min(9_999, max(-99, level))
        battery = max(3.0, battery - 0.000_001 * seconds)
    }

    func levelJSON(ts: Int64) -> String {
        let rainPart = rain > 0 ? ",\"rain_mm_h\":\(rounded(rain, 1))" : ""
        return
            "{\"ts\":\(ts),\"seq\":\(seq),\"level_cm\":\(rounded(level, 1)),\"battery_v\":\(rounded(battery, 2))\(rainPart)}"
    }

    var readingsPerMessage: Int { rain > 0 ? 3 : 2 }
}

func rounded(_ value: Double, _ places: Int) -> String {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    return String((value * scale).rounded() / scale)
}

/// `7` → `"007"`: sensor ids sort in order in listings.
func pad3(_ value: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, 3 - digits.count)) + digits
}
