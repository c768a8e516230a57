public import Telemetry

/// What a vehicle knows about itself when an offer arrives.
public struct VehicleIdentity: Sendable, Equatable {
    public var vin: VIN
    public var hardwareID: String
    public var installedCounter: UInt64
    public var installedSHA256: String

    public init(vin: VIN, hardwareID: String, installedCounter: UInt64, installedSHA256: String) {
        self.vin = vin
        self.hardwareID = hardwareID
        self.installedCounter = installedCounter
        self.installedSHA256 = installedSHA256
    }
}

/// Every check of the trust model that a vehicle makes before it downloads a byte, in the
/// order `Firmware-Protocols/ota.md` lists them. The gateway runs the same checks at upload
/// (without a vehicle) to fail early; only the vehicle's run is a security boundary.
public enum VehicleCheck {
    public static func evaluate(
        _ signed: SignedManifest, policy: TrustPolicy, vehicle: VehicleIdentity, nowSeconds: Int64
    ) throws(ManifestError) {
        try policy.verify(signed)
        let manifest = signed.manifest
        guard manifest.hardwareID == vehicle.hardwareID else {
            throw .wrongHardware(manifest: manifest.hardwareID, device: vehicle.hardwareID)
        }
        guard manifest.targets.includes(vehicle.vin) else { throw .notTargeted(vin: vehicle.vin.value) }
        guard manifest.releaseCounter > vehicle.installedCounter else {
            throw .rollback(counter: manifest.releaseCounter, installed: vehicle.installedCounter)
        }
        guard nowSeconds < manifest.expires else { throw .expired(expires: manifest.expires, now: nowSeconds) }
    }
}
