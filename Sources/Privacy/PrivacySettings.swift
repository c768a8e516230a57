public import Settings

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

    public init() {}

    public static let section = ConfigSection<Self>([
        .choice("upstream_vin", \.upstreamVIN, allowed: ["pseudonym", "plain"]),
        .integer("pseudonym_period_days", \.pseudonymPeriodDays, range: 1...366),
        .optionalText("pseudonym_secret_file", \.pseudonymSecretFile),
        .integer("position_retention_s", \.positionRetentionS, range: 60...31_536_000),
    ])

    public var pseudonymsUpstream: Bool { upstreamVIN == "pseudonym" }
}
