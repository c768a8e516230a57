import Crypto
import JSON
import Settings

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

    static let section = ConfigSection<Self>([
        .flag("enabled", \.enabled), .optionalText("directory", \.directory),
        .publicKeys("trusted_keys", \.trustedKeys),
        .integer("signature_threshold", \.signatureThreshold, range: 1...16),
        .integer("block_size", \.blockSize, range: 1024...262_144),
        .integer("max_blob_bytes", \.maxBlobBytes, range: 1024...(16 * 1024 * 1024 * 1024)),
        .integer("max_bytes_per_second", \.maxBytesPerSecond, range: 0...10_000_000_000),
        .integer("max_concurrent_transfers", \.maxConcurrentTransfers, range: 1...100_000),
        .flag("fleet", \.fleet), .publicKeys("fleet_tally_keys", \.fleetTallyKeys),
    ])

    static func parse(_ root: JSONObject, into ota: inout OTASettings, reader: inout ConfigReader) {
        section.read(root, "ota", path: "ota", into: &ota, reader: &reader)
        if ota.maxBytesPerSecond > 0, ota.maxBytesPerSecond < ota.blockSize {
            reader.problem("ota.max_bytes_per_second", "must be 0 (unlimited) or at least ota.block_size")
        }
        if ota.enabled, ota.fleet, ota.fleetTallyKeys.isEmpty {
            reader.problem(
                "ota.fleet_tally_keys",
                "must list the fleet depot's public key when ota.fleet is on (gwctl ota keygen on the depot host prints it)"
            )
        }
        if ota.enabled, Int64(ota.trustedKeys.count) < ota.signatureThreshold, !ota.trustedKeys.isEmpty {
            reader.problem(
                "ota.signature_threshold",
                "is \(ota.signatureThreshold) but only \(ota.trustedKeys.count) trusted key(s) are listed: no manifest could pass"
            )
        }
    }

    /// Hex Ed25519 public keys, each checked.
    fileprivate static func keyList(_ value: JSONValue?, path: String, reader: inout ConfigReader) -> [String] {
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

    var json: JSONValue { .object(Self.section.json(self)) }
}

extension ConfigKey where Section == OTASettings {
    /// A list of hex Ed25519 public keys, each checked.
    fileprivate static func publicKeys(_ name: String, _ field: any WritableKeyPath<Section, [String]> & Sendable)
        -> Self
    {
        .custom(
            name,
            read: { reader, object, path, section in
                section[keyPath: field] = OTASettings.keyList(object?[name], path: path, reader: &reader)
            }, write: { .array($0[keyPath: field].map(JSONValue.string)) })
    }
}
