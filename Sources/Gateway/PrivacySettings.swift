import JSON

/// The `privacy` section: how long vehicle positions are kept, and how vehicles are named
/// upstream. VINs with positions and times are personal data (PDPA 2010, GDPR); see
/// SECURITY.md, "Data protection".
public struct PrivacySettings: Sendable {
    /// `pseudonym` (default): VINs leave the board as keyed pseudonyms; `plain`: as they are.
    public var upstreamVIN = "pseudonym"
    /// How long one pseudonym stands for one vehicle before the next period's takes over.
    public var pseudonymPeriodDays: Int64 = 30
    /// The board's pseudonym secret; default `pseudonym.key` beside the store file.
    public var pseudonymSecretFile: String?
    /// Positions (`lat_deg`, `lon_deg`, `gps_speed_kmh`, `heading_deg`) older than this are
    /// erased from the store, whatever room the ring has.
    public var positionRetentionS: Int64 = 3600

    static let keys = ["upstream_vin", "pseudonym_period_days", "pseudonym_secret_file", "position_retention_s"]

    public var pseudonymsUpstream: Bool { upstreamVIN == "pseudonym" }

    static func parse(_ root: JSONObject, into privacy: inout PrivacySettings, reader: inout ConfigReader) {
        let object = reader.object(root, "privacy", path: "privacy", known: keys)
        privacy.upstreamVIN = reader.choice(
            object, "upstream_vin", path: "privacy.upstream_vin", default: "pseudonym", allowed: ["pseudonym", "plain"])
        privacy.pseudonymPeriodDays = reader.integer(
            object, "pseudonym_period_days", path: "privacy.pseudonym_period_days", default: 30, range: 1...366)
        privacy.pseudonymSecretFile = reader.string(
            object, "pseudonym_secret_file", path: "privacy.pseudonym_secret_file", default: nil)
        privacy.positionRetentionS = reader.integer(
            object, "position_retention_s", path: "privacy.position_retention_s", default: 3600,
            range: 60...31_536_000)
    }

    var json: JSONValue {
        .object(
            JSONObject([
                ("upstream_vin", .string(upstreamVIN)), ("pseudonym_period_days", .int(pseudonymPeriodDays)),
                ("pseudonym_secret_file", pseudonymSecretFile.map(JSONValue.string) ?? .null),
                ("position_retention_s", .int(positionRetentionS)),
            ]))
    }
}
