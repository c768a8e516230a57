public import Crypto
public import JSON

/// A manifest with its signatures, as it travels: `{"signed": {...}, "signatures": [...]}`.
/// The signatures cover the RFC 8785 canonical bytes of `signed`.
public struct SignedManifest: Sendable, Equatable {
    public struct Signature: Sendable, Equatable {
        public var keyID: String
        public var signature: [UInt8]

        public init(keyID: String, signature: [UInt8]) {
            self.keyID = keyID
            self.signature = signature
        }
    }

    public var manifest: ReleaseManifest
    public var signatures: [Signature]
    /// The canonical bytes of `signed` as received, which is what was signed.
    public let signedBytes: [UInt8]

    /// Largest manifest accepted: a 100 000-VIN target list fits.
    public static let maxBytes = 4 * 1024 * 1024

    public init(manifest: ReleaseManifest, signatures: [Signature]) {
        self.manifest = manifest
        self.signatures = signatures
        // A manifest built here has integers only, within range by construction.
        signedBytes = (try? manifest.json.canonicalBytes()) ?? []
    }

    /// Signs a manifest with an operator's key (on the operator's machine).
    public static func sign(_ manifest: ReleaseManifest, with keys: [Ed25519.PrivateKey]) -> SignedManifest {
        var signed = SignedManifest(manifest: manifest, signatures: [])
        for key in keys {
            signed.signatures.append(Signature(keyID: key.publicKey.keyID, signature: key.sign(signed.signedBytes)))
        }
        return signed
    }

    public init(json: JSONValue) throws(ManifestError) {
        guard let object = json.object else { throw .malformed("a manifest must be a JSON object") }
        if let unknown = object.keys.first(where: { $0 != "signed" && $0 != "signatures" }) {
            throw .malformed("\(unknown) is not a manifest member (only signed and signatures)")
        }
        guard let signed = object["signed"] else { throw .malformed("signed is missing") }
        manifest = try ReleaseManifest(json: signed)
        do {
            signedBytes = try signed.canonicalBytes()
        } catch {
            throw .malformed(error.description)
        }
        guard case .array(let values)? = object["signatures"], !values.isEmpty, values.count <= 16 else {
            throw .malformed("signatures must be an array of 1 to 16 {key_id, sig}")
        }
        signatures = []
        for (index, value) in values.enumerated() {
            guard let entry = value.object, entry.keys.count == 2, let keyID = entry["key_id"]?.string,
                keyID.utf8.count == 32, Hex.decode(keyID) != nil, let sigText = entry["sig"]?.string,
                let signature = Hex.decode(sigText), signature.count == 64
            else {
                throw .malformed("signatures[\(index)] must be {\"key_id\": 32 hex, \"sig\": 128 hex}")
            }
            signatures.append(Signature(keyID: keyID, signature: signature))
        }
    }

    public init(bytes: some Collection<UInt8>) throws(ManifestError) {
        guard bytes.count <= Self.maxBytes else { throw .malformed("the manifest is larger than \(Self.maxBytes) bytes") }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw .malformed("not JSON: \(error)")
        }
        try self.init(json: value)
    }

    public var json: JSONValue {
        .object(
            JSONObject([
                ("signed", manifest.json),
                (
                    "signatures",
                    .array(
                        signatures.map {
                            .object(JSONObject([("key_id", .string($0.keyID)), ("sig", .string(Hex.encode($0.signature)))]))
                        })
                ),
            ]))
    }

    /// SHA-256 of the signed bytes: the manifest's identity (signatures may be added later).
    public var digest: String { SHA256.hex(signedBytes) }
}
