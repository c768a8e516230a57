public import Crypto
public import JSON
public import Settings

extension OTAService.Configuration {
    /// The `ota` section's keys, in the order `--print-default-config` prints them.
    public static let section = ConfigSection<Self>([
        .flag("enabled", \.enabled), .optionalText("directory", \.directory),
        .publicKeys("trusted_keys", \.trustedKeys),
        .integer("signature_threshold", \.signatureThreshold, range: 1...16),
        .integer("block_size", \.blockSize, range: 1024...262_144),
        .integer("max_blob_bytes", \.maxBlobBytes, range: 1024...(16 * 1024 * 1024 * 1024)),
        .integer("max_bytes_per_second", \.maxBytesPerSecond, range: 0...10_000_000_000),
        .integer("max_concurrent_transfers", \.maxConcurrentTransfers, range: 1...100_000),
        .flag("fleet", \.fleet), .publicKeys("fleet_tally_keys", \.fleetTallyKeys),
    ])

    /// Reads the `ota` object of `root`, with the checks that span its keys.
    public static func read(_ root: JSONObject, into ota: inout Self, reader: inout ConfigReader) {
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
        if ota.enabled, ota.trustedKeys.count < ota.signatureThreshold, !ota.trustedKeys.isEmpty {
            reader.problem(
                "ota.signature_threshold",
                "is \(ota.signatureThreshold) but only \(ota.trustedKeys.count) trusted key(s) are listed: no manifest could pass"
            )
        }
    }

    /// Hex Ed25519 public keys (what `gwctl ota keygen` prints), each checked.
    fileprivate static func keyList(_ value: JSONValue?, path: String, reader: inout ConfigReader)
        -> [Ed25519.PublicKey]
    {
        guard let value, value != .null else { return [] }
        guard case .array(let values) = value else {
            reader.problem(path, "must be an array of hex Ed25519 public keys (gwctl ota keygen prints one)")
            return []
        }
        var keys: [Ed25519.PublicKey] = []
        for (index, value) in values.enumerated() {
            guard let text = value.string, let raw = Hex.decode(text), let key = try? Ed25519.PublicKey(raw: raw) else {
                reader.problem(
                    "\(path)[\(index)]", "must be 64 hex digits, a raw Ed25519 public key (gwctl ota keygen prints one)"
                )
                continue
            }
            keys.append(key)
        }
        return keys
    }
}

extension ConfigKey where Section == OTAService.Configuration {
    /// A list of Ed25519 public keys, written in the file as hex.
    fileprivate static func publicKeys(
        _ name: String, _ field: any WritableKeyPath<Section, [Ed25519.PublicKey]> & Sendable
    ) -> Self {
        .custom(
            name,
            read: { reader, object, path, section in
                section[keyPath: field] = OTAService.Configuration.keyList(object?[name], path: path, reader: &reader)
            }, write: { .array($0[keyPath: field].map { .string(Hex.encode($0.raw)) }) })
    }
}
