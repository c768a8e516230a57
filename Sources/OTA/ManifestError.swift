/// Why a manifest or an image was refused. `code` is the stable word a vehicle puts in its
/// `rejected` status and the gateway counts by; `description` is for people.
public enum ManifestError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case signatureThreshold(valid: Int, needed: Int, untrusted: [String], invalid: [String])
    case wrongHardware(manifest: String, device: String)
    case notTargeted(vin: String)
    case rollback(counter: UInt64, installed: UInt64)
    case expired(expires: Int64, now: Int64)
    case lengthExceeded(length: UInt64, limit: UInt64)
    case hashMismatch(expected: String, actual: String)
    case deltaBaseMismatch(expected: String, installed: String)
    case deltaFailed(String)

    public var code: String {
        switch self {
        case .malformed: "malformed_manifest"
        case .signatureThreshold(_, _, let untrusted, let invalid):
            invalid.isEmpty && !untrusted.isEmpty ? "untrusted_key" : "bad_signature"
        case .wrongHardware: "wrong_hardware"
        case .notTargeted: "not_targeted"
        case .rollback: "rollback"
        case .expired: "expired"
        case .lengthExceeded: "length_exceeded"
        case .hashMismatch: "hash_mismatch"
        case .deltaBaseMismatch: "delta_base_mismatch"
        case .deltaFailed: "delta_failed"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let detail): "malformed manifest: \(detail)"
        case .signatureThreshold(let valid, let needed, let untrusted, let invalid):
            "\(valid) valid signature(s) from trusted keys, \(needed) needed"
                + (untrusted.isEmpty ? "" : "; untrusted key(s) \(untrusted.joined(separator: ","))")
                + (invalid.isEmpty ? "" : "; invalid signature(s) by \(invalid.joined(separator: ","))")
        case .wrongHardware(let manifest, let device):
            "the release is for hardware \(manifest), this is \(device)"
        case .notTargeted(let vin): "\(vin) is not among the release's targets"
        case .rollback(let counter, let installed):
            "release counter \(counter) is not above the installed \(installed) (downgrade refused)"
        case .expired(let expires, let now): "the manifest expired at \(expires), it is now \(now)"
        case .lengthExceeded(let length, let limit): "\(length) bytes received, the signed length is \(limit)"
        case .hashMismatch(let expected, let actual): "SHA-256 is \(actual), the manifest signs \(expected)"
        case .deltaBaseMismatch(let expected, let installed):
            "the delta applies to \(expected), the installed image is \(installed)"
        case .deltaFailed(let detail): "the delta could not be applied: \(detail)"
        }
    }
}
