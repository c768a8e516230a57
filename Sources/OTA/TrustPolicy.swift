public import Crypto

/// The operator keys a verifier trusts and how many of them must sign.
///
/// Why a threshold: with two operators holding keys and a threshold of 2, one stolen laptop
/// cannot release firmware. Each trusted key counts once however many times it signs.
public struct TrustPolicy: Sendable {
    public let keys: [String: Ed25519.PublicKey]
    public let threshold: Int

    public init(keys: [Ed25519.PublicKey], threshold: Int = 1) {
        var byID: [String: Ed25519.PublicKey] = [:]
        for key in keys { byID[key.keyID] = key }
        self.keys = byID
        self.threshold = max(1, threshold)
    }

    /// Passes only when at least `threshold` distinct trusted keys signed the exact bytes.
    public func verify(_ signed: SignedManifest) throws(ManifestError) {
        try verify(signatures: signed.signatures, bytes: signed.signedBytes)
    }

    /// The threshold rule over any signed bytes: fleet orders and tallies use it too.
    public func verify(signatures: [SignedManifest.Signature], bytes: [UInt8]) throws(ManifestError) {
        var valid = Set<String>()
        var untrusted: [String] = []
        var invalid: [String] = []
        for signature in signatures {
            guard let key = keys[signature.keyID] else {
                untrusted.append(signature.keyID)
                continue
            }
            if key.verify(signature: signature.signature, message: bytes) {
                valid.insert(signature.keyID)
            } else {
                invalid.append(signature.keyID)
            }
        }
        guard valid.count >= threshold else {
            throw .signatureThreshold(valid: valid.count, needed: threshold, untrusted: untrusted, invalid: invalid)
        }
    }
}
