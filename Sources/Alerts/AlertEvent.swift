/// What an alert is about.
public enum AlertType: String, Sendable, CaseIterable, Hashable {
    case waterLevel = "water_level"
    case riseRate = "rise_rate"
    case stale
    case lowBattery = "low_battery"
    /// The gauge's trend reaches the alarm level within `forecast_lead_min`.
    case forecast
    case dtc
    case milOn = "mil_on"
    case coolant
}

/// The state an alert moves to.
public enum AlertState: String, Sendable, Hashable {
    case warning
    case alarm
    case cleared
}

/// One raise or clear. `subject` tells apart alerts of the same type on one device (the
/// trouble code, for `dtc`); it is empty otherwise.
public struct AlertEvent: Sendable, Equatable {
    public var device: String
    public var type: AlertType
    public var state: AlertState
    public var value: Double
    public var tsMs: Int64
    public var subject: String

    public init(device: String, type: AlertType, state: AlertState, value: Double, tsMs: Int64, subject: String = "") {
        self.device = device
        self.type = type
        self.state = state
        self.value = value
        self.tsMs = tsMs
        self.subject = subject
    }
}
