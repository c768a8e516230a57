public import Campaigns
public import Crypto
public import JSON
public import OTA

/// The fleet channel's topics and the two binary/JSON shapes that are not signed documents.
/// Everything here crosses the city broker; Firmware-Protocols/upstream.md ("Fleet OTA")
/// documents it byte by byte.
///
/// Topic roots: announcements, blob chunks and fetch requests under `{prefix}-ota/`, which the
/// platform's queue (bound to `{prefix}.#`) does not collect; a gateway's reports beside its
/// other upstream kinds, `{prefix}/{gateway_id}/ota`, which the platform does read. A gateway's
/// certificate may publish only `{prefix}/{gateway_id}/…` and `{prefix}-ota/from/{gateway_id}/…`.
public struct FleetTopics: Sendable, Equatable {
    public let prefix: String

    public init(prefix: String) { self.prefix = prefix }

    /// Signed release manifests.
    public var releases: String { "\(prefix)-ota/releases" }
    /// Signed campaign and command documents, in one topic so that one queue keeps their order.
    public var orders: String { "\(prefix)-ota/orders" }
    /// The depot's fleet-wide tallies, one message per campaign whenever it changes.
    public var tallies: String { "\(prefix)-ota/tally" }
    /// Blob chunks the depot sends to one gateway.
    public func chunks(to gateway: String) -> String { "\(prefix)-ota/to/\(gateway)/blob" }
    /// Releases and orders announced again to one gateway (`gwctl fleet announce --to`), for a
    /// gateway that joined after the push: the others do not see them again.
    public func releases(to gateway: String) -> String { "\(prefix)-ota/to/\(gateway)/releases" }
    public func orders(to gateway: String) -> String { "\(prefix)-ota/to/\(gateway)/orders" }
    /// Everything addressed to one gateway.
    public func direct(to gateway: String) -> String { "\(prefix)-ota/to/\(gateway)/#" }
    /// A gateway's request for a range of a blob.
    public func fetch(from gateway: String) -> String { "\(prefix)-ota/from/\(gateway)/fetch" }
    public var fetchFilter: String { "\(prefix)-ota/from/+/fetch" }
    public var reportFilter: String { "\(prefix)/+/ota" }
    /// A gateway's reports: release held, vehicle state, refusals.
    public func reports(from gateway: String) -> String { "\(prefix)/\(gateway)/ota" }

    /// The gateway a fetch request or a report came from: the topic says, never the payload.
    public func sender(of topic: String) -> (gateway: String, isFetch: Bool)? {
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 4, parts[0] == "\(prefix)-ota", parts[1] == "from", parts[3] == "fetch",
            Self.isGatewayID(parts[2])
        {
            return (String(parts[2]), true)
        }
        if parts.count == 3, parts[0] == prefix, parts[2] == "ota", Self.isGatewayID(parts[1]) {
            return (String(parts[1]), false)
        }
        return nil
    }
}

extension FleetTopics {
    /// 1 to 64 of `A-Z a-z 0-9 _ -`, as the city broker's accounts are.
    public static func isGatewayID(_ text: some StringProtocol) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95
            }
    }
}

/// One piece of a blob, depot → gateway: 32 bytes SHA-256 of the whole blob, 8 bytes offset,
/// 8 bytes the blob's length (both big-endian), then the bytes.
public struct BlobChunk: Sendable, Equatable {
    public static let headerLength = 48
    /// The depot's piece size; a request's range is cut into pieces of at most this.
    public static let maxBytes = 64 * 1024

    public var sha256: [UInt8]
    public var offset: UInt64
    public var total: UInt64
    public var bytes: [UInt8]

    public init(sha256: [UInt8], offset: UInt64, total: UInt64, bytes: [UInt8]) {
        self.sha256 = sha256
        self.offset = offset
        self.total = total
        self.bytes = bytes
    }

    public var encoded: [UInt8] {
        var out = sha256
        out.reserveCapacity(Self.headerLength + bytes.count)
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: offset >> UInt64(shift)))
        }
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: total >> UInt64(shift)))
        }
        return out + bytes
    }

    public init(decoding data: [UInt8]) throws(FleetWireError) {
        guard data.count > Self.headerLength else {
            throw .malformed("a chunk is at least 49 bytes, got \(data.count)")
        }
        func integer(at start: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in start..<start + 8 { value = value << 8 | UInt64(data[index]) }
            return value
        }
        sha256 = Array(data[0..<32])
        offset = integer(at: 32)
        total = integer(at: 40)
        bytes = Array(data[Self.headerLength...])
        // Compared without adding: a hostile offset near 2^64 must not overflow.
        guard bytes.count <= Self.maxBytes, offset < total, UInt64(bytes.count) <= total - offset else {
            throw .malformed("chunk at \(offset) of \(bytes.count) bytes does not fit a blob of \(total)")
        }
    }
}

/// A gateway's request for `length` bytes of a blob from `offset`: JSON
/// `{"sha256": "...", "offset": n, "length": n}`.
public struct FetchRequest: Sendable, Equatable {
    /// Most bytes one request may ask for: the depot answers with up to 16 chunks.
    public static let maxLength: UInt64 = 1024 * 1024

    public var sha256: String
    public var offset: UInt64
    public var length: UInt64

    public init(sha256: String, offset: UInt64, length: UInt64) {
        self.sha256 = sha256
        self.offset = offset
        self.length = length
    }

    public var bytes: [UInt8] {
        Array(
            JSONValue.object(
                JSONObject([
                    ("sha256", .string(sha256)), ("offset", .int(Int64(offset))), ("length", .int(Int64(length))),
                ])
            ).serialized().utf8)
    }

    public init(bytes: [UInt8]) throws(FleetWireError) {
        guard bytes.count <= 512, let object = (try? JSONParser.parse(bytes))?.object, object.keys.count == 3,
            let sha = object["sha256"]?.string, sha.utf8.count == 64, Hex.decode(sha) != nil,
            case .int(let offset)? = object["offset"], offset >= 0,
            case .int(let length)? = object["length"], length >= 1, UInt64(length) <= Self.maxLength
        else { throw .malformed("a fetch request is {\"sha256\": 64 hex, \"offset\": n, \"length\": 1..1048576}") }
        sha256 = sha
        self.offset = UInt64(offset)
        self.length = UInt64(length)
    }
}

public enum FleetWireError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self {
        case .malformed(let detail): detail
        }
    }
}

/// The depot's tally of one fleet campaign, `{prefix}-ota/tally`, signed by the depot's own
/// key so that a compromised broker cannot move a campaign's waves or abort it:
/// `{"signed": {"type": "tg-fleet-tally-v1", "campaign", "targets", "finished", "failures",
/// "installed", "terminal", "waves": [{"size", "installed", "terminal"}], "ts_ms"},
/// "signatures": [{"key_id", "sig"}]}`, wave figures cumulative, the signature over the RFC 8785
/// bytes of `signed` as for manifests.
public struct TallyMessage: Sendable, Equatable {
    public static let type = "tg-fleet-tally-v1"

    public var campaign: String
    public var tally: FleetTally
    public var tsMs: Int64
    public var signatures: [SignedManifest.Signature] = []

    public init(campaign: String, tally: FleetTally, tsMs: Int64) {
        self.campaign = campaign
        self.tally = tally
        self.tsMs = tsMs
    }

    var signedJSON: JSONValue {
        .object(
            JSONObject([
                ("type", .string(Self.type)), ("campaign", .string(campaign)), ("targets", .int(Int64(tally.targets))),
                ("finished", .int(Int64(tally.finished))), ("failures", .int(Int64(tally.failures))),
                ("installed", .int(Int64(tally.installed))), ("terminal", .int(Int64(tally.terminal))),
                (
                    "waves",
                    .array(
                        tally.waves.map { wave in
                            .object(
                                JSONObject([
                                    ("size", .int(Int64(wave.size))), ("installed", .int(Int64(wave.installed))),
                                    ("terminal", .int(Int64(wave.terminal))),
                                ]))
                        })
                ),
                ("ts_ms", .int(tsMs)),
            ]))
    }

    /// What the signatures cover.
    public var signedBytes: [UInt8] { (try? signedJSON.canonicalBytes()) ?? [] }

    public func signed(with keys: [Ed25519.PrivateKey]) -> TallyMessage {
        var copy = self
        let bytes = signedBytes
        copy.signatures = keys.map { .init(keyID: $0.publicKey.keyID, signature: $0.sign(bytes)) }
        return copy
    }

    public var bytes: [UInt8] {
        Array(
            JSONValue.object(
                JSONObject([
                    ("signed", signedJSON),
                    (
                        "signatures",
                        .array(
                            signatures.map {
                                .object(
                                    JSONObject([
                                        ("key_id", .string($0.keyID)), ("sig", .string(Hex.encode($0.signature))),
                                    ]))
                            })
                    ),
                ])
            ).serialized().utf8)
    }

    public init(bytes: [UInt8]) throws(FleetDocumentError) {
        guard bytes.count <= 16 * 1024, let object = (try? JSONParser.parse(bytes))?.object,
            object.keys.allSatisfy({ $0 == "signed" || $0 == "signatures" }), let signed = object["signed"]?.object,
            signed["type"]?.string == Self.type, let campaign = signed["campaign"]?.string
        else { throw .malformed("a tally is {\"signed\": {\"type\": \"\(Self.type)\", ...}, \"signatures\": [...]}") }
        func count(_ value: JSONValue?) throws(FleetDocumentError) -> Int {
            guard case .int(let number)? = value, number >= 0, number <= 10_000_000 else {
                throw .malformed("tally counts are integers from 0 to 10 000 000")
            }
            return Int(number)
        }
        var waves: [FleetTally.Wave] = []
        for wave in signed["waves"]?.arrayValue?.prefix(20) ?? [] {
            waves.append(
                .init(
                    size: try count(wave["size"]), installed: try count(wave["installed"]),
                    terminal: try count(wave["terminal"])))
        }
        self.campaign = campaign
        tally = FleetTally(
            targets: try count(signed["targets"]), finished: try count(signed["finished"]),
            failures: try count(signed["failures"]), installed: try count(signed["installed"]),
            terminal: try count(signed["terminal"]), waves: waves)
        guard case .int(let ts)? = signed["ts_ms"] else { throw .malformed("ts_ms is missing") }
        tsMs = ts
        // What is verified is this document re-serialised: a member outside the shape above
        // changes the bytes, and the signature fails.
        guard (try? JSONValue.object(signed).canonicalBytes()) == signedBytes else {
            throw .malformed(
                "a tally has exactly the members type, campaign, targets, finished, failures, installed, terminal, waves, ts_ms"
            )
        }
        switch object["signatures"] {
        case nil, .array([])?: throw .unsigned
        case .array(let values)? where values.count <= 16:
            for value in values {
                guard let entry = value.object, entry.keys.count == 2, let keyID = entry["key_id"]?.string,
                    keyID.utf8.count == 32, Hex.decode(keyID) != nil, let sigText = entry["sig"]?.string,
                    let signature = Hex.decode(sigText), signature.count == 64
                else { throw .malformed("signatures must be [{\"key_id\": 32 hex, \"sig\": 128 hex}]") }
                signatures.append(.init(keyID: keyID, signature: signature))
            }
        default: throw .malformed("signatures must be an array of 1 to 16 {key_id, sig}")
        }
    }
}

extension TrustPolicy {
    /// A tally passes when one of the depot's keys signed it.
    public func verify(_ tally: TallyMessage) throws(FleetDocumentError) {
        do { try verify(signatures: tally.signatures, bytes: tally.signedBytes) } catch { throw .signature(error) }
    }
}
