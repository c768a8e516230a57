public import Crypto
public import JSON

/// An operator's signed order to every gateway of a fleet: start a campaign, or pause, resume,
/// cancel or abort one. It travels over the city broker, which is not trusted: whoever runs (or
/// breaks into) the broker can publish anything there, so a gateway acts only on a document
/// whose signatures pass its `TrustPolicy` and whose `sequence` is above every one it has seen
/// for that campaign.
///
/// The shape mirrors a release manifest: `{"signed": {...}, "signatures": [...]}`, signatures
/// over the RFC 8785 canonical bytes of `signed`, integers only.
public struct FleetDocument: Sendable, Equatable {
    public enum Verb: String, Sendable, CaseIterable {
        case pause, resume, cancel, abort
    }

    public enum Body: Sendable, Equatable {
        /// Runs `manifest` (the digest of a signed release manifest) with campaign settings as
        /// the gateway's REST API takes them. `vehicleKey` names vehicles in fleet reports.
        case campaign(manifest: String, settings: JSONObject, vehicleKey: [UInt8])
        case command(Verb)
    }

    public static let campaignType = "tg-fleet-campaign-v1"
    public static let commandType = "tg-fleet-command-v1"
    public static let maxBytes = 64 * 1024

    /// 1 to 64 of `A-Z a-z 0-9 . _ -`: the operator's name for the campaign, the same on every gateway.
    public var campaign: String
    /// Orders every document of one campaign: a gateway takes only a higher one.
    public var sequence: UInt64
    /// Unix seconds, for people and logs; ordering is `sequence`'s alone.
    public var issued: Int64
    public var body: Body
    public var signatures: [SignedManifest.Signature]
    public let signedBytes: [UInt8]

    public init(campaign: String, sequence: UInt64, issued: Int64, body: Body) {
        self.campaign = campaign
        self.sequence = sequence
        self.issued = issued
        self.body = body
        signatures = []
        signedBytes =
            (try? Self.signedJSON(campaign: campaign, sequence: sequence, issued: issued, body: body)
                .canonicalBytes()) ?? []
    }

    public func signed(with keys: [Ed25519.PrivateKey]) -> FleetDocument {
        var copy = self
        for key in keys {
            copy.signatures.append(.init(keyID: key.publicKey.keyID, signature: key.sign(signedBytes)))
        }
        return copy
    }

    /// SHA-256 of the signed bytes: one document, however many copies the broker delivers.
    public var digest: String { SHA256.hex(signedBytes) }

    public var type: String {
        if case .campaign = body { return Self.campaignType }
        return Self.commandType
    }

    /// The name a vehicle has in this campaign's fleet reports: `ov-` + the first 12 bytes of
    /// HMAC-SHA-256(vehicle_key, VIN) in hex. The same on every gateway, so a vehicle that roams
    /// counts once; unlinkable to the VIN without the campaign's key.
    public static func vehicleName(_ vin: String, key: [UInt8]) -> String {
        "ov-" + Hex.encode(HMACSHA256.authenticate(Array(vin.utf8), key: key).prefix(12))
    }

    public init(bytes: some Collection<UInt8>) throws(FleetDocumentError) {
        guard bytes.count <= Self.maxBytes else { throw .malformed("larger than \(Self.maxBytes) bytes") }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch { throw .malformed("not JSON: \(error)") }
        guard let object = value.object else { throw .malformed("a fleet document must be a JSON object") }
        if let unknown = object.keys.first(where: { $0 != "signed" && $0 != "signatures" }) {
            throw .malformed("\(unknown) is not a member (only signed and signatures)")
        }
        guard let signed = object["signed"]?.object else { throw .malformed("signed must be an object") }
        let signatureValues: [JSONValue]
        switch object["signatures"] {
        case nil, .array([])?: throw .unsigned
        case .array(let values)? where values.count <= 16: signatureValues = values
        default: throw .malformed("signatures must be an array of 1 to 16 {key_id, sig}")
        }
        guard let type = signed["type"]?.string else { throw .malformed("type is missing") }
        let expected: [String]
        switch type {
        case Self.campaignType:
            expected = ["campaign", "issued", "manifest", "sequence", "settings", "type", "vehicle_key"]
        case Self.commandType: expected = ["campaign", "issued", "sequence", "type", "verb"]
        default: throw .malformed("type must be \(Self.campaignType) or \(Self.commandType), not \(type)")
        }
        if let unknown = signed.keys.first(where: { !expected.contains($0) }) {
            throw .malformed("\(unknown) is not a member of \(type)")
        }
        if let missing = expected.first(where: { signed[$0] == nil }) { throw .malformed("\(missing) is missing") }
        guard let name = signed["campaign"]?.string, (1...64).contains(name.utf8.count),
            name.utf8.allSatisfy(ReleaseManifest.isNameByte)
        else { throw .malformed("campaign must be 1 to 64 of A-Z a-z 0-9 . _ -") }
        guard case .int(let sequence)? = signed["sequence"], sequence >= 1, sequence <= 9_007_199_254_740_991 else {
            throw .malformed("sequence must be an integer from 1 to 2^53-1")
        }
        guard case .int(let issued)? = signed["issued"], issued >= 0, issued <= 9_007_199_254_740_991 else {
            throw .malformed("issued must be unix seconds")
        }
        if type == Self.campaignType {
            guard let manifest = signed["manifest"]?.string, manifest.utf8.count == 64,
                manifest.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
            else { throw .malformed("manifest must be the 64 lowercase hex digest of a signed manifest") }
            guard let settings = signed["settings"]?.object else { throw .malformed("settings must be an object") }
            guard let keyText = signed["vehicle_key"]?.string, keyText.utf8.count == 64, let key = Hex.decode(keyText)
            else { throw .malformed("vehicle_key must be 64 hex digits (32 random bytes)") }
            body = .campaign(manifest: manifest, settings: settings, vehicleKey: key)
        } else {
            guard let text = signed["verb"]?.string, let verb = Verb(rawValue: text) else {
                throw .malformed("verb must be one of \(Verb.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            body = .command(verb)
        }
        campaign = name
        self.sequence = UInt64(sequence)
        self.issued = issued
        do { signedBytes = try JSONValue.object(signed).canonicalBytes() } catch { throw .malformed(error.description) }
        signatures = []
        for (index, value) in signatureValues.enumerated() {
            guard let entry = value.object, entry.keys.count == 2, let keyID = entry["key_id"]?.string,
                keyID.utf8.count == 32, Hex.decode(keyID) != nil, let sigText = entry["sig"]?.string,
                let signature = Hex.decode(sigText), signature.count == 64
            else { throw .malformed("signatures[\(index)] must be {\"key_id\": 32 hex, \"sig\": 128 hex}") }
            signatures.append(.init(keyID: keyID, signature: signature))
        }
    }

    public var json: JSONValue {
        .object(
            JSONObject([
                ("signed", Self.signedJSON(campaign: campaign, sequence: sequence, issued: issued, body: body)),
                (
                    "signatures",
                    .array(
                        signatures.map {
                            .object(
                                JSONObject([("key_id", .string($0.keyID)), ("sig", .string(Hex.encode($0.signature)))]))
                        })
                ),
            ]))
    }

    static func signedJSON(campaign: String, sequence: UInt64, issued: Int64, body: Body) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("campaign", .string(campaign)), ("sequence", .int(Int64(sequence))), ("issued", .int(issued)),
        ]
        switch body {
        case .campaign(let manifest, let settings, let key):
            members += [
                ("type", .string(campaignType)), ("manifest", .string(manifest)), ("settings", .object(settings)),
                ("vehicle_key", .string(Hex.encode(key))),
            ]
        case .command(let verb):
            members += [("type", .string(commandType)), ("verb", .string(verb.rawValue))]
        }
        return .object(JSONObject(members))
    }
}

/// Why a gateway refused a fleet document. `code` is what it reports upstream and counts by.
public enum FleetDocumentError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case unsigned
    case signature(ManifestError)
    /// Not above the highest sequence already taken for the campaign.
    case replayed(sequence: UInt64, highest: UInt64)
    case unknownCampaign(String)
    case refusedByGateway(String)
    /// A fetched blob that did not hash to its name (`hash_mismatch`), or another blob store refusal.
    case blob(code: String, detail: String)

    public var code: String {
        switch self {
        case .malformed: "malformed"
        case .unsigned: "unsigned"
        case .signature(let error): error.code
        case .replayed: "replayed"
        case .unknownCampaign: "unknown_campaign"
        case .refusedByGateway: "refused"
        case .blob(let code, _): code
        }
    }

    public var description: String {
        switch self {
        case .malformed(let detail): "malformed fleet document: \(detail)"
        case .unsigned: "the document carries no signature; sign it with gwctl ota fleet"
        case .signature(let error): error.description
        case .replayed(let sequence, let highest):
            "sequence \(sequence) is not above \(highest), already taken for this campaign (a replay or an older order)"
        case .unknownCampaign(let name): "no campaign \(name) on this gateway; its campaign document comes first"
        case .refusedByGateway(let detail): detail
        case .blob(_, let detail): detail
        }
    }
}

extension TrustPolicy {
    /// The same threshold rule as for manifests, over a fleet document's signed bytes.
    public func verify(_ document: FleetDocument) throws(FleetDocumentError) {
        guard !document.signatures.isEmpty else { throw .unsigned }
        do { try verify(signatures: document.signatures, bytes: document.signedBytes) } catch {
            throw .signature(error)
        }
    }
}

/// What a gateway does with a fleet order whose signatures passed: the replay guard, pure so
/// that the vectors drive the same rule the gateway runs.
public enum FleetOrderRule {
    public enum Verdict: Sendable, Equatable {
        case take
        /// The same document again (the broker's redelivery): nothing to do, not a refusal.
        case duplicate
        case refuse(FleetDocumentError)
    }

    /// `current`: the campaign's highest sequence taken and that document's digest, nil when
    /// the gateway has no document of this campaign.
    public static func judge(_ document: FleetDocument, current: (sequence: UInt64, digest: String)?) -> Verdict {
        if let current, document.sequence <= current.sequence {
            return document.digest == current.digest
                ? .duplicate : .refuse(.replayed(sequence: document.sequence, highest: current.sequence))
        }
        switch document.body {
        case .campaign:
            if current != nil {
                return .refuse(
                    .refusedByGateway(
                        "campaign \(document.campaign) exists; change it with commands, or use a new name"))
            }
        case .command:
            if current == nil { return .refuse(.unknownCampaign(document.campaign)) }
        }
        return .take
    }
}
