import Alerts
import Testing

/// A deterministic noise source, so a noisy series is the same on every run.
struct Noise {
    var state: UInt64 = 0x1234_5678
    mutating func next(amplitude: Double) -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (Double(state >> 11) / Double(1 << 53) * 2 - 1) * amplitude
    }
}

@Suite struct WaterAlertMachineTests {
    func machine(_ configure: (inout WaterAlertSettings) -> Void = { _ in }) -> WaterAlertMachine {
        var settings = WaterAlertSettings()
        settings.warningCm = 100
        settings.alarmCm = 200
        settings.hysteresisCm = 10
        settings.dwellS = 30
        settings.riseCmPerMin = 5
        settings.riseWindowS = 300
        configure(&settings)
        return WaterAlertMachine(sensor: "drain-1", settings: settings, nowMs: 0)
    }

    /// Feeds one reading every `stepS` seconds; returns every event with its time.
    func feed(_ m: inout WaterAlertMachine, from start: Int64 = 0, stepS: Int64 = 10, _ levels: [Double])
        -> [AlertEvent]
    {
        var events: [AlertEvent] = []
        for (index, cm) in levels.enumerated() {
            let ts = start + Int64(index) * stepS * 1000
            events += m.observe(levelCm: cm, batteryV: nil, tsMs: ts, nowMs: ts)
        }
        return events
    }

    @Test func thresholdsRaiseAfterTheDwellTime() {
        var m = machine { $0.riseCmPerMin = 1_000 }
        // 110 cm for 20 s is not yet a warning (dwell 30 s); at 30 s it is.
        let events = feed(&m, [50, 110, 110, 110, 110, 210, 210, 210, 210])
        #expect(events.map(\.state) == [.warning, .alarm])
        #expect(events.map(\.tsMs) == [40_000, 80_000])
        #expect(events.allSatisfy { $0.type == .waterLevel })
        #expect(m.level.current == .alarm)
    }

    @Test func hysteresisAndDwellOnTheWayDown() {
        var m = machine { $0.riseCmPerMin = 1_000 }
        _ = feed(&m, [210, 210, 210, 210])
        #expect(m.level.current == .alarm)
        // 195 is within the hysteresis band below 200: still alarm.
        #expect(feed(&m, from: 40_000, [195, 195, 195, 195, 195]).isEmpty)
        // 185 held for the dwell: down to warning; 85 held: cleared.
        let down = feed(&m, from: 100_000, [185, 185, 185, 185, 85, 85, 85, 85])
        #expect(down.map(\.state) == [.warning, .cleared])
    }

    /// A gauge sitting on the warning threshold with ±8 cm of noise (within the 10 cm
    /// hysteresis) raises once and never flaps.
    @Test func noisyLevelOnTheThresholdDoesNotFlap() {
        var m = machine { $0.riseCmPerMin = 1_000 }
        var noise = Noise()
        let levels = (0..<2_000).map { _ in 100 + noise.next(amplitude: 8) }
        let events = feed(&m, stepS: 5, levels)
        #expect(events.count <= 1, "\(events.map(\.state))")
        // Spikes shorter than the dwell time never raise.
        var quiet = machine { $0.riseCmPerMin = 1_000 }
        let spiky = (0..<600).map { $0 % 5 == 0 ? 230.0 : 60 }
        #expect(feed(&quiet, stepS: 5, spiky).isEmpty)
    }

    @Test func rateOfRiseUsesTheSlopeOverTheWindow() {
        var m = machine()
        var noise = Noise()
        // Flat with noise: no rise alert.
        let flat = (0..<60).map { _ in 40 + noise.next(amplitude: 3) }
        #expect(feed(&m, flat).filter { $0.type == .riseRate }.isEmpty)
        // Rising 1 cm every 10 s = 6 cm/min, above 5: raised once, after the dwell.
        let rising = (0..<60).map { 40 + Double($0) + noise.next(amplitude: 1) }
        let events = feed(&m, from: 600_000, rising).filter { $0.type == .riseRate }
        #expect(events.map(\.state) == [.warning])
        #expect(abs(m.riseRateCmPerMin! - 6) < 0.5)
        // Levelling off clears it.
        let level = (0..<60).map { _ in 100 + noise.next(amplitude: 1) }
        #expect(feed(&m, from: 1_200_000, level).filter { $0.type == .riseRate }.map(\.state) == [.cleared])
    }

    @Test func tooFewPointsGiveNoRate() {
        var m = machine()
        _ = feed(&m, [10, 20])
        #expect(m.riseRateCmPerMin == nil)
    }

    @Test func staleRaisedByTheClockAndClearedByTheNextReading() {
        var m = machine { $0.staleAfterS = 600 }
        _ = m.observe(levelCm: 10, batteryV: nil, tsMs: 1_000, nowMs: 1_000)
        #expect(m.tick(nowMs: 600_999) == nil)
        let raised = m.tick(nowMs: 601_000)
        #expect(raised?.type == .stale && raised?.state == .warning)
        #expect(m.tick(nowMs: 700_000) == nil, "raised once")
        let next = m.observe(levelCm: 10, batteryV: nil, tsMs: 702_000, nowMs: 702_000)
        #expect(next.map(\.type) == [.stale])
        #expect(next.map(\.state) == [.cleared])
    }

    @Test func lowBatteryWithHysteresis() {
        var m = machine { $0.dwellS = 0 }
        var events: [AlertEvent] = []
        for (index, volts) in [3.5, 3.25, 3.35, 3.38, 3.41].enumerated() {
            events += m.observe(levelCm: nil, batteryV: volts, tsMs: Int64(index + 1) * 1000, nowMs: 0)
        }
        #expect(events.map(\.state) == [.warning, .cleared])
        #expect(events.last?.value == 3.41)
    }

    @Test func replayedOldReadingsDoNotMoveAlerts() {
        var m = machine { $0.dwellS = 0 }
        _ = m.observe(levelCm: 50, batteryV: nil, tsMs: 10_000, nowMs: 10_000)
        #expect(m.observe(levelCm: 500, batteryV: nil, tsMs: 5_000, nowMs: 11_000).isEmpty)
        #expect(m.level.current == .normal)
    }
}

@Suite struct VehicleAlertMachineTests {
    @Test func troubleCodesMilAndCoolant() {
        var m = VehicleAlertMachine(vin: "1HGCM82633A004352", coolantLimitC: 110)
        let first = m.observe(codes: ["P0301", "U0123"], tsMs: 1)
        #expect(first.map(\.subject) == ["P0301", "U0123"])
        #expect(m.observe(codes: ["P0301", "U0123"], tsMs: 2).isEmpty)
        let change = m.observe(codes: ["P0301", "C0123"], tsMs: 3)
        #expect(change.map { "\($0.subject) \($0.state)" } == ["C0123 warning", "U0123 cleared"])
        #expect(m.observe(milOn: 1, coolantC: 90, tsMs: 4).map(\.type) == [.milOn])
        #expect(m.observe(milOn: 1, coolantC: 111, tsMs: 5).map { "\($0.type) \($0.state)" } == ["coolant alarm"])
        #expect(m.observe(milOn: 1, coolantC: 107, tsMs: 6).isEmpty, "within 5 °C of the limit")
        #expect(m.observe(milOn: 0, coolantC: 104, tsMs: 7).map(\.state) == [.cleared, .cleared])
    }
}
