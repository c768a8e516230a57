/// The alert logic of one flood gauge, as a pure state machine: readings in, events out.
///
/// Level: normal → warning → alarm with hysteresis on the way down and a dwell time both ways.
/// Rate of rise: least-squares slope of the levels in a sliding window, so one noisy reading
/// cannot raise it. Battery: low with a fixed 0.1 V hysteresis. Stale: raised by `tick` when
/// no reading arrived for `staleAfterS`, cleared by the next reading.
public struct WaterAlertMachine: Sendable {
    public enum LevelState: String, Sendable {
        case normal, warning, alarm
    }

    public let sensor: String
    public var settings: WaterAlertSettings
    public private(set) var level: DwellFilter<LevelState>
    private var rising: DwellFilter<Bool>
    private var batteryLow: DwellFilter<Bool>
    public private(set) var stale = false
    public private(set) var lastLevelCm: Double?
    public private(set) var lastTsMs: Int64 = .min
    /// Gateway clock of the last reading, for staleness (device clocks may be off).
    public private(set) var lastSeenMs: Int64
    private var history: [(ts: Int64, level: Double)] = []
    private var forecaster: LevelForecaster
    /// The trend as of the last evaluation (at most every 10 s of reading time).
    public private(set) var forecast = LevelForecast.none
    private var forecastRaised = false
    private var nextForecastTs: Int64 = .min
    static let maxHistory = 512

    public init(sensor: String, settings: WaterAlertSettings, nowMs: Int64) {
        self.sensor = sensor
        self.settings = settings
        level = DwellFilter(initial: .normal, dwellMs: settings.dwellS * 1000)
        rising = DwellFilter(initial: false, dwellMs: settings.dwellS * 1000)
        batteryLow = DwellFilter(initial: false, dwellMs: settings.dwellS * 1000)
        forecaster = LevelForecaster(windowMs: settings.forecastWindowS * 1000)
        lastSeenMs = nowMs
    }

    /// Restores the states an earlier run left raised.
    public mutating func restore(
        level state: LevelState, rising isRising: Bool, batteryLow isLow: Bool, stale isStale: Bool,
        forecast isForecast: Bool = false
    ) {
        forecastRaised = isForecast
        level.restore(state)
        rising.restore(isRising)
        batteryLow.restore(isLow)
        stale = isStale
    }

    /// Refills the rate-of-rise history and the trend from stored levels (in time order) after
    /// a restart, so the forecast is there at once instead of 30 minutes later. Raises and
    /// clears nothing: the states raised before the stop come from `restore`.
    public mutating func warm(levels: [(tsMs: Int64, levelCm: Double)]) {
        for point in levels where point.tsMs > lastTsMs {
            lastTsMs = point.tsMs
            lastLevelCm = point.levelCm
            history.append((point.tsMs, point.levelCm))
            forecaster.add(tsMs: point.tsMs, levelCm: point.levelCm)
        }
        guard let newest = history.last?.ts else { return }
        trimHistory(newestTs: newest)
        forecast = forecaster.forecast(warningCm: settings.warningCm, alarmCm: settings.alarmCm)
        nextForecastTs = newest + 10_000
    }

    /// Keeps the rise window behind the newest level, and at most `maxHistory` points.
    private mutating func trimHistory(newestTs: Int64) {
        let horizon = newestTs - settings.riseWindowS * 1000
        if let keep = history.firstIndex(where: { $0.ts >= horizon }), keep > 0 { history.removeFirst(keep) }
        if history.count > Self.maxHistory { history.removeFirst(history.count - Self.maxHistory) }
    }

    func target(for cm: Double) -> LevelState {
        let s = settings
        switch level.current {
        case .normal:
            return cm >= s.alarmCm ? .alarm : cm >= s.warningCm ? .warning : .normal
        case .warning:
            if cm >= s.alarmCm { return .alarm }
            return cm < s.warningCm - s.hysteresisCm ? .normal : .warning
        case .alarm:
            if cm >= s.alarmCm - s.hysteresisCm { return .alarm }
            return cm < s.warningCm - s.hysteresisCm ? .normal : .warning
        }
    }

    /// cm per minute over the sliding window, or nil with too little history to say.
    public var riseRateCmPerMin: Double? {
        guard history.count >= 3, let first = history.first, let last = history.last,
            last.ts - first.ts >= settings.riseWindowS * 1000 / 2
        else { return nil }
        let n = Double(history.count)
        var sumT = 0.0
        var sumL = 0.0
        for point in history {
            sumT += Double(point.ts - first.ts)
            sumL += point.level
        }
        let meanT = sumT / n
        let meanL = sumL / n
        var covariance = 0.0
        var variance = 0.0
        for point in history {
            let dt = Double(point.ts - first.ts) - meanT
            covariance += dt * (point.level - meanL)
            variance += dt * dt
        }
        guard variance > 0 else { return nil }
        return covariance / variance * 60_000
    }

    /// A reading of the gauge. Readings older than the newest one seen (replays, backlog
    /// uploads) are about the past and do not move alerts.
    /// Raises `forecast` when a significant rise reaches the alarm level within the lead time
    /// (and the level is not there yet); clears it when the trend turns steady or falling.
    private mutating func forecastEvents(levelCm: Double, tsMs: Int64) -> [AlertEvent] {
        if !forecastRaised, forecast.status == .rising, let minutes = forecast.minutesToAlarm,
            minutes <= settings.forecastLeadMin, levelCm < settings.alarmCm
        {
            forecastRaised = true
            return [AlertEvent(device: sensor, type: .forecast, state: .warning, value: minutes, tsMs: tsMs)]
        }
        if forecastRaised, forecast.status == .steady || forecast.status == .falling {
            forecastRaised = false
            return [AlertEvent(device: sensor, type: .forecast, state: .cleared, value: 0, tsMs: tsMs)]
        }
        return []
    }

    public mutating func observe(levelCm: Double?, batteryV: Double?, tsMs: Int64, nowMs: Int64) -> [AlertEvent] {
        lastSeenMs = max(lastSeenMs, nowMs)
        var events: [AlertEvent] = []
        if stale {
            stale = false
            events.append(AlertEvent(device: sensor, type: .stale, state: .cleared, value: 0, tsMs: tsMs))
        }
        guard tsMs > lastTsMs else { return events }
        lastTsMs = tsMs
        if let cm = levelCm {
            lastLevelCm = cm
            if let changed = level.observe(target(for: cm), at: tsMs) {
                let state: AlertState =
                    switch changed {
                    case .normal: .cleared
                    case .warning: .warning
                    case .alarm: .alarm
                    }
                events.append(AlertEvent(device: sensor, type: .waterLevel, state: state, value: cm, tsMs: tsMs))
            }
            history.append((tsMs, cm))
            trimHistory(newestTs: tsMs)
            if let rate = riseRateCmPerMin {
                // Clears once the rise has slowed to half the threshold.
                let isRising = rising.current ? rate > settings.riseCmPerMin / 2 : rate >= settings.riseCmPerMin
                if let changed = rising.observe(isRising, at: tsMs) {
                    events.append(
                        AlertEvent(
                            device: sensor, type: .riseRate, state: changed ? .warning : .cleared, value: rate,
                            tsMs: tsMs))
                }
            }
        }
        if let cm = levelCm {
            forecaster.add(tsMs: tsMs, levelCm: cm)
            if tsMs >= nextForecastTs {
                nextForecastTs = tsMs + 10_000
                forecast = forecaster.forecast(warningCm: settings.warningCm, alarmCm: settings.alarmCm)
                events += forecastEvents(levelCm: cm, tsMs: tsMs)
            }
        }
        if let volts = batteryV {
            let isLow = batteryLow.current ? volts < settings.lowBatteryV + 0.1 : volts < settings.lowBatteryV
            if let changed = batteryLow.observe(isLow, at: tsMs) {
                events.append(
                    AlertEvent(
                        device: sensor, type: .lowBattery, state: changed ? .warning : .cleared, value: volts,
                        tsMs: tsMs))
            }
        }
        return events
    }

    /// Raises `stale` once the gauge has been silent for `staleAfterS` by the gateway clock.
    public mutating func tick(nowMs: Int64) -> AlertEvent? {
        guard !stale, nowMs - lastSeenMs >= settings.staleAfterS * 1000 else { return nil }
        stale = true
        return AlertEvent(
            device: sensor, type: .stale, state: .warning, value: Double(nowMs - lastSeenMs) / 1000, tsMs: nowMs)
    }

}
