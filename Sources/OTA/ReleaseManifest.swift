public import JSON
public import Telemetry

/// What an operator signs: one firmware image for one kind of hardware, which vehicles may
/// take it, and until when. Every field is checked again by each vehicle (`VehicleCheck`);
/// the gateway is only a relay.
public struct ReleaseManifest: Sendable, Equatable {
    public static let type = "tg-release-v1"

    /// A binary delta from an older image to this one (`Firmware-Protocols/ota.md`).
    public struct Delta: Sendable, Equatable {
        public var fromSHA256: String
        public var patchSHA256: String
        public var patchLength: UInt64
        public var format: String

        public init(fromSHA256: String, patchSHA256: String, patchLength: UInt64, format: String) {
            self.fromSHA256 = fromSHA256
            self.patchSHA256 = patchSHA256
            self.patchLength = patchLength
            self.format = format
        }
    }

    public enum Targets: Sendable, Equatable {
        /// Every vehicle whose hardware id matches.
        case all
        case vins([VIN])

        public func includes(_ vin: VIN) -> Bool {
            switch self {
            case .all: true
            case .vins(let vins): vins.contains(vin)
            }
        }
    }

    public var name: String
    /// Semantic version, for people; ordering is by `releaseCounter`.
    public var version: String
    /// Only goes up: a vehicle never installs a counter at or below the one it has (anti-rollback).
    public var releaseCounter: UInt64
    public var hardwareID: String
    public var length: UInt64
    public var sha256: String
    public var deltas: [Delta]
    public var targets: Targets
    /// Unix seconds.
    public var created: Int64
    public var expires: Int64

    public init(
        name: String, version: String, releaseCounter: UInt64, hardwareID: String, length: UInt64, sha256: String,
        deltas: [Delta] = [], targets: Targets, created: Int64, expires: Int64
    ) {
        self.name = name
        self.version = version
        self.releaseCounter = releaseCounter
        self.hardwareID = hardwareID
        self.length = length
        self.sha256 = sha256
        self.deltas = deltas
        self.targets = targets
        self.created = created
        self.expires = expires
    }

    public func delta(from installedSHA256: String) -> Delta? {
        deltas.first { $0.fromSHA256 == installedSHA256 }
    }

    /// The `signed` object, as signed.
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("type", .string(Self.type)), ("name", .string(name)), ("version", .string(version)),
            ("release_counter", .int(Int64(releaseCounter))), ("hardware_id", .string(hardwareID)),
            ("length", .int(Int64(length))), ("sha256", .string(sha256)),
        ]
        members.append(
            (
                "deltas",
                .array(
                    deltas.map { delta in
                        .object(
                            JSONObject([
                                ("from_sha256", .string(delta.fromSHA256)), ("patch_sha256", .string(delta.patchSHA256)),
                                ("patch_length", .int(Int64(delta.patchLength))), ("format", .string(delta.format)),
                            ]))
                    })
            ))
        switch targets {
        case .all: members.append(("targets", .object(JSONObject([("all", .bool(true))]))))
        case .vins(let vins):
            members.append(("targets", .object(JSONObject([("vins", .array(vins.map { .string($0.value) }))]))))
        }
        members.append(("created", .int(created)))
        members.append(("expires", .int(expires)))
        return .object(JSONObject(members))
    }

    /// Parses and validates the `signed` object: every field present, typed and in range,
    /// nothing unknown (an unknown field could carry meaning a vehicle would silently ignore).
    public init(json: JSONValue) throws(ManifestError) {
        guard let object = json.object else { throw .malformed("signed must be an object") }
        let known: Set<String> = [
            "type", "name", "version", "release_counter", "hardware_id", "length", "sha256", "deltas", "targets",
            "created", "expires",
        ]
        if let unknown = object.keys.first(where: { !known.contains($0) }) {
            throw .malformed("signed.\(unknown) is not a manifest field")
        }
        guard object["type"]?.string == Self.type else { throw .malformed("signed.type must be \"\(Self.type)\"") }
        name = try Self.text(object, "name", pattern: Self.isNameByte, maxLength: 64)
        version = try Self.text(object, "version", pattern: Self.isVersionByte, maxLength: 64)
        guard Self.isSemver(version) else { throw .malformed("signed.version \(version) is not MAJOR.MINOR.PATCH[-pre][+build]") }
        releaseCounter = try Self.unsigned(object, "release_counter")
        guard releaseCounter >= 1 else { throw .malformed("signed.release_counter must be at least 1") }
        hardwareID = try Self.text(object, "hardware_id", pattern: Self.isNameByte, maxLength: 64)
        length = try Self.unsigned(object, "length")
        guard length >= 1 else { throw .malformed("signed.length must be at least 1") }
        sha256 = try Self.hash(object, "sha256")
        guard case .array(let deltaValues)? = object["deltas"] else { throw .malformed("signed.deltas must be an array") }
        guard deltaValues.count <= 16 else { throw .malformed("signed.deltas has more than 16 entries") }
        deltas = []
        for (index, value) in deltaValues.enumerated() {
            guard let delta = value.object, delta.keys.count == 4 else {
                throw .malformed("signed.deltas[\(index)] must be an object with from_sha256, patch_sha256, patch_length, format")
            }
            let format = try Self.text(delta, "format", pattern: Self.isNameByte, maxLength: 32)
            deltas.append(
                Delta(
                    fromSHA256: try Self.hash(delta, "from_sha256"), patchSHA256: try Self.hash(delta, "patch_sha256"),
                    patchLength: try Self.unsigned(delta, "patch_length"), format: format))
        }
        guard let targetObject = object["targets"]?.object, targetObject.keys.count == 1 else {
            throw .malformed("signed.targets must be {\"all\": true} or {\"vins\": [...]}")
        }
        if targetObject["all"] == .bool(true) {
            targets = .all
        } else if case .array(let values)? = targetObject["vins"], !values.isEmpty, values.count <= 100_000 {
            var vins: [VIN] = []
            for (index, value) in values.enumerated() {
                guard let text = value.string, let vin = VIN(text) else {
                    throw .malformed("signed.targets.vins[\(index)] is not a VIN (17 of A-Z 0-9 without I O Q)")
                }
                vins.append(vin)
            }
            targets = .vins(vins)
        } else {
            throw .malformed("signed.targets must be {\"all\": true} or {\"vins\": [...]} with 1 to 100000 VINs")
        }
        guard case .int(let created)? = object["created"], (0...Self.maxInteger).contains(created) else {
            throw .malformed("signed.created must be unix seconds, 0...2^53-1")
        }
        guard case .int(let expires)? = object["expires"], (0...Self.maxInteger).contains(expires) else {
            throw .malformed("signed.expires must be unix seconds, 0...2^53-1")
        }
        guard expires > created else { throw .malformed("signed.expires must be after signed.created") }
        self.created = created
        self.expires = expires
    }

    private static func text(
        _ object: JSONObject, _ key: String, pattern: (UInt8) -> Bool, maxLength: Int
    ) throws(ManifestError) -> String {
        guard let value = object[key]?.string, !value.isEmpty, value.utf8.count <= maxLength,
            value.utf8.allSatisfy(pattern)
        else {
            throw .malformed("\(key) must be 1 to \(maxLength) of A-Z a-z 0-9 . _ - (and + for versions)")
        }
        return value
    }

    /// The largest integer a manifest may hold, 2^53 - 1: above it, JSON writers that use
    /// doubles (JavaScript, many canonicalisers) change the number, and with it the signed bytes.
    public static let maxInteger: Int64 = (1 << 53) - 1

    private static func unsigned(_ object: JSONObject, _ key: String) throws(ManifestError) -> UInt64 {
        guard case .int(let value)? = object[key], (0...maxInteger).contains(value) else {
            throw .malformed("\(key) must be an integer 0...9007199254740991 (2^53 - 1)")
        }
        return UInt64(value)
    }

    private static func hash(_ object: JSONObject, _ key: String) throws(ManifestError) -> String {
        guard let value = object[key]?.string, value.utf8.count == 64,
            value.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { throw .malformed("\(key) must be 64 lowercase hex digits (SHA-256)") }
        return value
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122, UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    static func isVersionByte(_ byte: UInt8) -> Bool { isNameByte(byte) || byte == UInt8(ascii: "+") }

    static func isSemver(_ version: String) -> Bool {
        let core = version.split(separator: "+", maxSplits: 1, omittingEmptySubsequences: false)[0]
            .split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 3
            && parts.allSatisfy { part in
                !part.isEmpty && part.utf8.allSatisfy { (48...57).contains($0) } && (part == "0" || part.first != "0")
            }
    }
}
