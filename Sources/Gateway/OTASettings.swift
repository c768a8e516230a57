import Crypto
import JSON

/// The `ota` section: where releases are kept, which operator keys are trusted, and how hard
/// the gateway may push firmware at vehicles.
public struct OTASettings: Sendable {
    public var enabled = true
    /// Default: `ota` beside the store file.
    public var directory: String?
    /// Raw Ed25519 public keys, hex (what `gwctl ota keygen` prints).
    public var trustedKeys: [String] = []
    public var signatureThreshold: Int64 = 1
    public var blockSize: Int64 = 16 * 1024
    public var maxBlobBytes: Int64 = 512 * 1024 * 1024
    public var maxBytesPerSecond: Int64 = 0
    public var maxConcurrentTransfers: Int64 = 50
    /// Take releases and signed orders from the city broker (fleet OTA). Off by default: the
    /// city broker must first let this gateway read `{prefix}-ota/` (Deploy/city).
    public var fleet = false
    /// The fleet depot's Ed25519 public keys, hex: tallies must be signed by one of them.
    public var fleetTallyKeys: [String] = []

    static let keys = [
        "enabled", "directory", "trusted_keys", "signature_threshold", "block_size", "max_blob_bytes",
        "max_bytes_per_second", "max_concurrent_transfers", "fleet", "fleet_tally_keys",
    ]

    static func parse(_ root: JSONObject, into ota: inout OTASettings, reader: inout ConfigReader) {
        let object = reader.object(root, "ota", path: "ota", known: keys)
        ota.enabled = reader.boolean(object, "enabled", path: "ota.enabled", default: true)
        ota.directory = reader.string(object, "directory", path: "ota.directory", default: nil)
        ota.signatureThreshold = reader.integer(
            object, "signature_threshold", path: "ota.signature_threshold", default: 1, range: 1...16)
        ota.blockSize = reader.integer(
            object, "block_size", path: "ota.block_size", default: ota.blockSize, range: 1024...262_144)
        ota.maxBlobBytes = reader.integer(
            object, "max_blob_bytes", path: "ota.max_blob_bytes", default: ota.maxBlobBytes,
            range: 1024...(16 * 1024 * 1024 * 1024))
        ota.maxBytesPerSecond = reader.integer(
            object, "max_bytes_per_second", path: "ota.max_bytes_per_second", default: 0, range: 0...10_000_000_000)
        if ota.maxBytesPerSecond > 0, ota.maxBytesPerSecond < ota.blockSize {
            reader.problem("ota.max_bytes_per_second", "must be 0 (unlimited) or at least ota.block_size")
        }
        ota.maxConcurrentTransfers = reader.integer(
            object, "max_concurrent_transfers", path: "ota.max_concurrent_transfers", default: 50, range: 1...100_000)
        ota.fleet = reader.boolean(object, "fleet", path: "ota.fleet", default: false)
        ota.fleetTallyKeys = keyList(object?["fleet_tally_keys"], path: "ota.fleet_tally_keys", reader: &reader)
        if ota.enabled, ota.fleet, ota.fleetTallyKeys.isEmpty {
            reader.problem(
                "ota.fleet_tally_keys",
                "must list the fleet depot's public key when ota.fleet is on (gwctl ota keygen on the depot host prints it)"
            )
        }
        ota.trustedKeys = keyList(object?["trusted_keys"], path: "ota.trusted_keys", reader: &reader)
        if ota.enabled, Int64(ota.trustedKeys.count) < ota.signatureThreshold, !ota.trustedKeys.isEmpty {
            reader.problem(
                "ota.signature_threshold",
                "is \(ota.signatureThreshold) but only \(ota.trustedKeys.count) trusted key(s) are listed: no manifest could pass"
            )
        }
    }

    /// Hex Ed25519 public keys, each checked.
    private static func keyList(_ value: JSONValue?, path: String, reader: inout ConfigReader) -> [String] {
        guard let value, value != .null else { return [] }
        guard case .array(let values) = value else {
            reader.problem(path, "must be an array of hex Ed25519 public keys (gwctl ota keygen prints one)")
            return []
        }
        var keys: [String] = []
        for (index, value) in values.enumerated() {
            guard let text = value.string, let raw = Hex.decode(text), raw.count == 32,
                (try? Ed25519.PublicKey(raw: raw)) != nil
            else {
                reader.problem(
                    "\(path)[\(index)]", "must be 64 hex digits, a raw Ed25519 public key (gwctl ota keygen prints one)"
                )
                continue
            }
            keys.append(text.lowercased())
        }
        return keys
    }

    var json: JSONValue {
        .object(
            JSONObject([
                ("enabled", .bool(enabled)), ("directory", directory.map(JSONValue.string) ?? .null),
                ("trusted_keys", .array(trustedKeys.map(JSONValue.string))),
                ("signature_threshold", .int(signatureThreshold)), ("block_size", .int(blockSize)),
                ("max_blob_bytes", .int(maxBlobBytes)), ("max_bytes_per_second", .int(maxBytesPerSecond)),
                ("max_concurrent_transfers", .int(maxConcurrentTransfers)), ("fleet", .bool(fleet)),
                ("fleet_tally_keys", .array(fleetTallyKeys.map(JSONValue.string))),
            ]))
    }
}
