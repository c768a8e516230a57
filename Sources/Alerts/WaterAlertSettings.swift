/// Thresholds for one flood gauge. Defaults suit a street drain; rivers get per-sensor overrides.
public struct WaterAlertSettings: Sendable, Equatable {
    public var warningCm: Double = 150
    public var alarmCm: Double = 250
    /// Rate of rise (least-squares slope over `riseWindowS`) that raises `rise_rate`.
    public var riseCmPerMin: Double = 5
    public var riseWindowS: Int64 = 300
    /// A level must fall this far below a threshold to clear it, so a level sitting on the
    /// threshold does not flap.
    public var hysteresisCm: Double = 5
    /// A condition must hold this long (by reading time) before it raises or clears.
    public var dwellS: Int64 = 30
    /// No reading for this long raises `stale`.
    public var staleAfterS: Int64 = 900
    public var lowBatteryV: Double = 3.3
    /// A `forecast` alert when the trend reaches `alarmCm` within this many minutes.
    public var forecastLeadMin: Double = 30
    /// How far back the trend looks.
    public var forecastWindowS: Int64 = 1800

    public init() {}
}
