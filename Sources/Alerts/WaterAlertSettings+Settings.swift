public import JSON
public import Settings

extension WaterAlertSettings {
    /// The keys of `alerts.water`, and of each per-sensor override under it.
    public static let section = ConfigSection<Self>([
        .number("warning_cm", \.warningCm, range: -100...10_000),
        .number("alarm_cm", \.alarmCm, range: -100...10_000),
        .number("rise_cm_per_min", \.riseCmPerMin, range: 0.01...10_000),
        .integer("rise_window_s", \.riseWindowS, range: 10...86_400),
        .number("hysteresis_cm", \.hysteresisCm, range: 0...1_000),
        .integer("dwell_s", \.dwellS, range: 0...86_400),
        .integer("stale_after_s", \.staleAfterS, range: 10...604_800),
        .number("low_battery_v", \.lowBatteryV, range: 0...60),
        .number("forecast_lead_min", \.forecastLeadMin, range: 1...1_440),
        .integer("forecast_window_s", \.forecastWindowS, range: 300...86_400),
    ])

    /// Settings at `path`, each key defaulting to `base` (the defaults, or for a sensor's
    /// override the gateway-wide values).
    public static func read(
        _ object: JSONObject?, path: String, base: WaterAlertSettings, reader: inout ConfigReader
    ) -> WaterAlertSettings {
        var settings = base
        section.readKeys(object, path: path, into: &settings, reader: &reader)
        if settings.alarmCm <= settings.warningCm {
            reader.problem(
                path + ".alarm_cm", "must be above warning_cm (\(settings.warningCm)), got \(settings.alarmCm)")
        }
        return settings
    }
}
