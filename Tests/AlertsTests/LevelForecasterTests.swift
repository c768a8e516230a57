import Testing

@testable import Alerts

@Suite struct LevelForecasterTests {
    /// Points every `stepS` seconds for `minutes`, from `level(t)` with t in minutes.
    func series(minutes: Double, stepS: Double = 30, _ level: (Double, Int) -> Double) -> LevelForecaster {
        var forecaster = LevelForecaster(windowMs: 1_800_000)
        var index = 0
        var t = 0.0
        while t <= minutes {
            forecaster.add(tsMs: 1_767_225_600_000 + Int64(t * 60_000), levelCm: level(t, index))
            index += 1
            t += stepS / 60
        }
        return forecaster
    }

    /// A fixed pseudo-random sequence in -1...1, so failures replay.
    func noise(_ index: Int) -> Double {
        Double((index * 7_919 + 13) % 2_001) / 1_000 - 1
    }

    @Test func linearRiseGivesExactMinutes() throws {
        let forecast = series(minutes: 20) { t, _ in 50 + 2 * t }.forecast(warningCm: 150, alarmCm: 250)
        #expect(forecast.status == .rising)
        let slope = try #require(forecast.slopeCmPerMin)
        #expect(abs(slope - 2) < 0.001)
        #expect(abs(try #require(forecast.minutesToWarning) - 30) < 0.05, "level 90 at 20 min, 60 cm to go at 2 cm/min")
        #expect(abs(try #require(forecast.minutesToAlarm) - 80) < 0.05)
    }

    @Test func noiseAndOutliersBarelyMoveTheEstimate() throws {
        let forecaster = series(minutes: 25) { t, i in
            let spike = i == 10 || i == 25 || i == 40 ? 80.0 : 0  // three sensor glitches
            return 50 + 2 * t + noise(i) + spike
        }
        let forecast = forecaster.forecast(warningCm: 150, alarmCm: 250)
        #expect(forecast.status == .rising)
        #expect(abs(try #require(forecast.slopeCmPerMin) - 2) < 0.1, "within 5 % despite outliers")
        // The truth at 25 min: level 100, alarm in 75 min.
        #expect(abs(try #require(forecast.minutesToAlarm) - 75) < 5)
    }

    @Test func flatFallingAndScatteredSeries() {
        let flat = series(minutes: 20) { _, i in 80 + 0.3 * noise(i) }.forecast(warningCm: 150, alarmCm: 250)
        #expect(flat.status == .steady)
        #expect(flat.minutesToAlarm == nil)
        let falling = series(minutes: 20) { t, i in 200 - 3 * t + noise(i) }.forecast(warningCm: 150, alarmCm: 250)
        #expect(falling.status == .falling)
        #expect(falling.minutesToWarning == nil)
        let scattered = series(minutes: 20) { t, i in 80 + 0.05 * t + 25 * noise(i) }.forecast(
            warningCm: 150, alarmCm: 250)
        #expect(scattered.status == .noisy, "\(scattered)")
        #expect(scattered.minutesToAlarm == nil)
    }

    @Test func tooFewPointsOrTooShortASpanGiveNoForecast() {
        let few = series(minutes: 20, stepS: 300) { t, _ in 50 + 2 * t }.forecast(warningCm: 150, alarmCm: 250)
        #expect(few.status == .insufficient, "5 points")
        let short = series(minutes: 4) { t, _ in 50 + 2 * t }.forecast(warningCm: 150, alarmCm: 250)
        #expect(short.status == .insufficient)
        #expect(short.detail.contains("needs"))
    }

    @Test func theWindowKeepsOnePointPerBucketAndForgetsOldOnes() {
        var forecaster = LevelForecaster(windowMs: 1_800_000)
        for second in 0..<7_200 {
            forecaster.add(tsMs: Int64(second) * 1_000, levelCm: Double(second))
        }
        #expect(forecaster.points.count <= 121)
        #expect((forecaster.points.first?.ts ?? 0) >= 7_199_000 - 1_800_000)
    }

    @Test func theMachineRaisesAndClearsAForecastAlert() {
        var settings = WaterAlertSettings()
        settings.dwellS = 0
        var machine = WaterAlertMachine(sensor: "drain-1", settings: settings, nowMs: 0)
        var events: [AlertEvent] = []
        let start: Int64 = 1_767_225_600_000
        // 100 cm rising 5 cm/min: alarm (250) in 30 min once the trend is known.
        for step in 0...24 {
            let ts = start + Int64(step) * 30_000
            events += machine.observe(levelCm: 100 + 2.5 * Double(step), batteryV: nil, tsMs: ts, nowMs: ts)
        }
        let raised = events.filter { $0.type == .forecast }
        #expect(raised.count == 1)
        #expect(raised.first?.state == .warning)
        #expect((raised.first?.value ?? 99) <= 30)
        // The rise stops: the trend turns steady and the alert clears.
        events.removeAll()
        for step in 25...90 {
            let ts = start + Int64(step) * 30_000
            events += machine.observe(levelCm: 160, batteryV: nil, tsMs: ts, nowMs: ts)
        }
        #expect(events.filter { $0.type == .forecast }.map(\.state) == [.cleared])
    }
}
