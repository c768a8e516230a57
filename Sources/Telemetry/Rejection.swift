/// Why an input was refused. The raw value is the stable code stored in `rejects_v.reason`,
/// counted in metrics, and listed with examples in `Firmware-Protocols/`.
public enum RejectReason: String, Sendable, CaseIterable, Hashable {
    case payloadTooLarge = "payload_too_large"
    case unknownTopic = "unknown_topic"
    case badDeviceID = "bad_device_id"
    case notUTF8 = "not_utf8"
    case notJSON = "not_json"
    case notObject = "not_object"
    case missingField = "missing_field"
    case wrongType = "wrong_type"
    case badTimestamp = "bad_ts"
    case badSequence = "bad_seq"
    case outOfRange = "out_of_range"
    case emptyPIDs = "empty_pids"
    case unknownPID = "unknown_pid"
    case badPIDKey = "bad_pid_key"
    case badPIDLength = "bad_pid_length"
    case badHex = "bad_hex"
    case badDTC = "bad_dtc"
    case badText = "bad_text"
    /// A device never seen before, while the store already tracks `store.max_devices`: bounds
    /// what a flood of made-up ids can cost in memory and disk.
    case deviceLimit = "device_limit"
    /// A device sending faster than `limits.device_rate_per_s` (beyond its burst): its excess is
    /// refused so it cannot starve the others; what it loses shows up as its own seq gaps.
    case rateLimited = "rate_limited"
}

/// One refusal with the context a firmware developer needs to fix the device:
/// which field, what was wrong, what was expected.
public struct Rejection: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: RejectReason
    public let detail: String

    public init(_ reason: RejectReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason.rawValue): \(detail)" }
}
