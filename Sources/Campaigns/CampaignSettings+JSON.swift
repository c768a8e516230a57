public import JSON

extension CampaignSettings {
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("waves", .array(waves.map { .int(Int64($0)) })), ("success_pct", .int(Int64(successPct))),
            ("abort_failure_pct", .int(Int64(abortFailurePct))), ("abort_min_finished", .int(Int64(abortMinFinished))),
            ("vehicle_timeout_s", .int(Int64(vehicleTimeoutSeconds))), ("retries", .int(Int64(retries))),
        ]
        members.append(("window", window.map { .string($0.description) } ?? .null))
        return .object(JSONObject(members))
    }

    public static let keys = [
        "waves", "success_pct", "abort_failure_pct", "abort_min_finished", "vehicle_timeout_s", "retries", "window",
    ]

    /// Reads the settings members of `object` (others are the caller's), starting from the defaults.
    public init(json object: JSONObject) throws(CampaignInputError) {
        self.init()
        if let value = object["waves"] {
            guard case .array(let items) = value else { throw .invalid("waves must be an array of percentages") }
            waves = []
            for item in items {
                guard case .int(let number) = item, (1...100).contains(number) else {
                    throw .invalid("waves must be integers from 1 to 100")
                }
                waves.append(Int(number))
            }
        }
        func integer(_ key: String, into target: inout Int) throws(CampaignInputError) {
            guard let value = object[key] else { return }
            guard case .int(let number) = value, number >= 0, number <= 10_000_000 else {
                throw .invalid("\(key) must be a non-negative integer")
            }
            target = Int(number)
        }
        try integer("success_pct", into: &successPct)
        try integer("abort_failure_pct", into: &abortFailurePct)
        try integer("abort_min_finished", into: &abortMinFinished)
        try integer("vehicle_timeout_s", into: &vehicleTimeoutSeconds)
        try integer("retries", into: &retries)
        switch object["window"] {
        case nil, .null?: window = nil
        case .string(let text)?:
            guard let parsed = InstallWindow(text) else { throw .invalid("window must be HH:MM-HH:MM, e.g. 01:00-05:00") }
            window = parsed
        default: throw .invalid("window must be HH:MM-HH:MM or null")
        }
        if let problem = problem() { throw .invalid(problem) }
    }
}

public enum CampaignInputError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let text): text
        }
    }
}
