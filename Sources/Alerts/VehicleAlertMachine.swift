/// The alert logic of one vehicle: a trouble code that appears (cleared when it is no longer
/// reported), the malfunction lamp switching on, and the coolant over its limit (cleared
/// 5 °C below it).
public struct VehicleAlertMachine: Sendable {
    public let vin: String
    public var coolantLimitC: Double
    public private(set) var activeCodes: Set<String> = []
    public private(set) var milOn = false
    public private(set) var overheating = false
    private var lastTsMs: Int64 = .min

    public init(vin: String, coolantLimitC: Double) {
        self.vin = vin
        self.coolantLimitC = coolantLimitC
    }

    public mutating func restore(codes: Set<String>, milOn: Bool, overheating: Bool) {
        activeCodes = codes
        self.milOn = milOn
        self.overheating = overheating
    }

    public mutating func observe(milOn lamp: Double?, coolantC: Double?, tsMs: Int64) -> [AlertEvent] {
        guard tsMs > lastTsMs else { return [] }
        lastTsMs = tsMs
        var events: [AlertEvent] = []
        if let lamp {
            let on = lamp >= 1
            if on != milOn {
                milOn = on
                events.append(
                    AlertEvent(device: vin, type: .milOn, state: on ? .warning : .cleared, value: lamp, tsMs: tsMs))
            }
        }
        if let coolantC {
            let hot = overheating ? coolantC > coolantLimitC - 5 : coolantC > coolantLimitC
            if hot != overheating {
                overheating = hot
                events.append(
                    AlertEvent(device: vin, type: .coolant, state: hot ? .alarm : .cleared, value: coolantC, tsMs: tsMs)
                )
            }
        }
        return events
    }

    /// The full set of codes the unit reports now (a mode 03 response lists them all).
    public mutating func observe(codes: [String], tsMs: Int64) -> [AlertEvent] {
        let reported = Set(codes)
        var events: [AlertEvent] = []
        for code in codes where !activeCodes.contains(code) {
            events.append(AlertEvent(device: vin, type: .dtc, state: .warning, value: 1, tsMs: tsMs, subject: code))
        }
        for code in activeCodes.subtracting(reported).sorted() {
            events.append(AlertEvent(device: vin, type: .dtc, state: .cleared, value: 0, tsMs: tsMs, subject: code))
        }
        activeCodes = reported
        return events
    }
}
