public import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Keyed pseudonyms for VINs leaving the board: the city sees a vehicle as the same
/// `pv-…` within one period and cannot link periods, nor get the VIN back, without the board's
/// secret. Whoever holds the secret (the city's data controller, by a documented procedure)
/// recomputes the pseudonym of a VIN it already knows; nothing here can be inverted.
///
/// pseudonym = "pv-" + hex(first 12 bytes of HMAC-SHA-256(periodKey, VIN)), where
/// periodKey = HMAC-SHA-256(secret, "telemetry-gateway pseudonym key, period " + N) and
/// N = floor(record time in ms / period length in ms). The record time is the data's own time
/// (a window's start, an event's or alert's ts, an advisory incident's start), so a re-sent or
/// revised record keeps its pseudonym.
public struct Pseudonymizer: Sendable {
    public let periodMs: Int64
    private let secret: [UInt8]

    public init(secret: [UInt8], periodDays: Int64) {
        precondition(secret.count >= 16 && periodDays > 0)
        self.secret = secret
        periodMs = periodDays * 86_400_000
    }

    public func period(atMs: Int64) -> Int64 {
        atMs >= 0 ? atMs / periodMs : (atMs - periodMs + 1) / periodMs
    }

    public func pseudonym(of vin: String, atMs: Int64) -> String {
        let periodKey = HMACSHA256.authenticate(
            Array("telemetry-gateway pseudonym key, period \(period(atMs: atMs))".utf8), key: secret)
        return "pv-" + Hex.encode(HMACSHA256.authenticate(Array(vin.utf8), key: periodKey).prefix(12))
    }

    /// What went wrong with the secret file, and where.
    public enum SecretError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case tooShort(path: String, bytes: Int)
        case notCreated(path: String, reason: String)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read the pseudonym secret \(path): \(reason)"
            case .tooShort(let path, let bytes):
                "the pseudonym secret \(path) has \(bytes) bytes, at least 16 are needed: restore it from the backup"
            case .notCreated(let path, let reason): "cannot create the pseudonym secret \(path): \(reason)"
            }
        }
    }

    /// The board's secret: read, or made at the first start (32 random bytes, mode 0600,
    /// written to a temporary name and renamed, so a crash leaves no half-written key).
    public static func loadOrCreateSecret(at path: String) throws(SecretError) -> [UInt8] {
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count >= 16 else { throw .tooShort(path: path, bytes: data.count) }
            return Array(data)
        }
        if access(path, F_OK) == 0 { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        let secret: [UInt8]
        do {
            secret = try SecureRandom.bytes(32)
        } catch {
            throw .notCreated(path: path, reason: "\(error)")
        }
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .notCreated(path: path, reason: String(cString: strerror(errno))) }
        let written = secret.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == secret.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw .notCreated(path: path, reason: String(cString: strerror(errno)))
        }
        return secret
    }
}
