public import JSON
public import Telemetry

/// The OTA wire protocol between a gateway and a vehicle (`Firmware-Protocols/ota.md`).
public enum OTATopic: Sendable, Equatable {
    case offer, get, data, status, cmd

    public var name: String {
        switch self {
        case .offer: "offer"
        case .get: "get"
        case .data: "data"
        case .status: "status"
        case .cmd: "cmd"
        }
    }

    public static func topic(_ kind: OTATopic, vin: VIN) -> String { "v1/ota/\(vin.value)/\(kind.name)" }

    /// The vehicle and kind of an OTA topic; nil for anything else (including wildcards and
    /// ids that are not VINs, which an ACL should already have stopped).
    public static func parse(_ topic: String) -> (vin: VIN, kind: OTATopic)? {
        let parts = topic.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].elementsEqual("v1".utf8), parts[1].elementsEqual("ota".utf8),
            let vin = VIN(String(decoding: parts[2], as: UTF8.self))
        else { return nil }
        switch String(decoding: parts[3], as: UTF8.self) {
        case "offer": return (vin, .offer)
        case "get": return (vin, .get)
        case "data": return (vin, .data)
        case "status": return (vin, .status)
        case "cmd": return (vin, .cmd)
        default: return nil
        }
    }
}

/// Which file of a release a transfer carries.
public enum FileKind: UInt8, Sendable, Equatable {
    case full = 0
    case delta = 1

    public var name: String { self == .full ? "full" : "delta" }

    public init?(name: String) {
        switch name {
        case "full": self = .full
        case "delta": self = .delta
        default: return nil
        }
    }
}

/// Why a protocol message was refused; the text names the field.
public struct ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Why an offer cannot be worked on. With a readable `campaign` the vehicle answers
/// `rejected` with `code` (`malformed_manifest` when the manifest is at fault, `malformed_offer`
/// when the offer's own fields are); without one it cannot address an answer, and only logs.
public struct OfferError: Error, Equatable, Sendable, CustomStringConvertible {
    public static let malformedOffer = "malformed_offer"
    public let campaign: UInt32?
    public let code: String
    public let message: String

    public init(campaign: UInt32?, code: String, _ message: String) {
        self.campaign = campaign
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// The file a vehicle is to fetch for a campaign.
public struct OfferedFile: Sendable, Equatable {
    public var kind: FileKind
    public var sha256: String
    public var length: UInt64
    public var blockSize: Int

    public init(kind: FileKind, sha256: String, length: UInt64, blockSize: Int) {
        self.kind = kind
        self.sha256 = sha256
        self.length = length
        self.blockSize = blockSize
    }

    public var blockCount: Int { Int((length + UInt64(blockSize) - 1) / UInt64(blockSize)) }

    /// Bytes in block `index` (the last one may be short).
    public func blockLength(_ index: Int) -> Int {
        let start = UInt64(index) * UInt64(blockSize)
        return Int(min(UInt64(blockSize), length - start))
    }
}

/// `v1/ota/{vin}/offer`, retained: a campaign's release for this vehicle.
public struct Offer: Sendable, Equatable {
    public static let minBlockSize = 1024
    public static let maxBlockSize = 256 * 1024

    public var campaign: UInt32
    public var manifest: SignedManifest
    public var file: OfferedFile

    public init(campaign: UInt32, manifest: SignedManifest, file: OfferedFile) {
        self.campaign = campaign
        self.manifest = manifest
        self.file = file
    }

    public var json: JSONValue {
        .object(
            JSONObject([
                ("campaign", .int(Int64(campaign))), ("manifest", manifest.json),
                (
                    "file",
                    .object(
                        JSONObject([
                            ("kind", .string(file.kind.name)), ("sha256", .string(file.sha256)),
                            ("length", .int(Int64(file.length))), ("block_size", .int(Int64(file.blockSize))),
                        ]))
                ),
            ]))
    }

    /// Parses the structure only; the vehicle then runs `VehicleCheck` and matches the file
    /// against the manifest (`matchesManifest`). Unknown members of the offer and of `file` are
    /// ignored: the offer is unsigned transport, nothing in it is trusted, so a member a newer
    /// gateway adds cannot weaken a check (the signed manifest, which is trusted, refuses them).
    public init(bytes: [UInt8]) throws(OfferError) {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw OfferError(campaign: nil, code: OfferError.malformedOffer, "the offer is not JSON: \(error)")
        }
        guard case .int(let number)? = value["campaign"], (1...Int64(UInt32.max)).contains(number) else {
            throw OfferError(
                campaign: nil, code: OfferError.malformedOffer, "offer.campaign must be an integer 1...4294967295")
        }
        let campaign = UInt32(number)
        guard let manifestValue = value["manifest"] else {
            throw OfferError(campaign: campaign, code: "malformed_manifest", "offer.manifest is missing")
        }
        do { manifest = try SignedManifest(json: manifestValue) } catch {
            throw OfferError(campaign: campaign, code: error.code, "offer.manifest: \(error)")
        }
        guard let file = value["file"]?.object, let kind = file["kind"]?.string.flatMap(FileKind.init(name:)),
            let sha = file["sha256"]?.string, sha.utf8.count == 64,
            sha.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }),
            case .int(let length)? = file["length"], (1...ReleaseManifest.maxInteger).contains(length),
            case .int(let blockSize)? = file["block_size"],
            (Int64(Self.minBlockSize)...Int64(Self.maxBlockSize)).contains(blockSize)
        else {
            throw OfferError(
                campaign: campaign, code: OfferError.malformedOffer,
                "offer.file must be {kind: full|delta, sha256: 64 lowercase hex, length: 1...2^53-1, "
                    + "block_size: \(Self.minBlockSize)...\(Self.maxBlockSize)}")
        }
        self.campaign = campaign
        self.file = OfferedFile(kind: kind, sha256: sha, length: UInt64(length), blockSize: Int(blockSize))
        guard self.file.blockCount <= Int(UInt32.max) else {
            throw OfferError(campaign: campaign, code: OfferError.malformedOffer, "offer.file has too many blocks")
        }
    }

    /// The offered file is the signed image, or one of its signed deltas, with the signed
    /// length: a vehicle never downloads more than the manifest allows.
    public func matchesManifest(installedSHA256: String) throws(ManifestError) {
        let release = manifest.manifest
        switch file.kind {
        case .full:
            guard file.sha256 == release.sha256 else { throw .hashMismatch(expected: release.sha256, actual: file.sha256) }
            guard file.length == release.length else { throw .lengthExceeded(length: file.length, limit: release.length) }
        case .delta:
            guard let delta = release.deltas.first(where: { $0.patchSHA256 == file.sha256 }) else {
                throw .hashMismatch(expected: release.deltas.map(\.patchSHA256).joined(separator: "|"), actual: file.sha256)
            }
            guard delta.fromSHA256 == installedSHA256 else {
                throw .deltaBaseMismatch(expected: delta.fromSHA256, installed: installedSHA256)
            }
            guard file.length == delta.patchLength else {
                throw .lengthExceeded(length: file.length, limit: delta.patchLength)
            }
            guard delta.format == "tgdiff1" else { throw .deltaFailed("unknown delta format \(delta.format)") }
        }
    }
}

/// `v1/ota/{vin}/get`: blocks a vehicle wants, as a range or a bitmap of at most 32.
public struct BlockRequest: Sendable, Equatable {
    public static let maxBlocks = 32

    public var campaign: UInt32
    public var file: FileKind
    public var first: UInt32
    /// Bit i set: block first + i is wanted.
    public var mask: UInt32

    public init(campaign: UInt32, file: FileKind, first: UInt32, count: Int) {
        self.campaign = campaign
        self.file = file
        self.first = first
        let count = min(max(count, 0), Self.maxBlocks)
        mask = count == 32 ? .max : (UInt32(1) << UInt32(count)) - 1
    }

    public init(campaign: UInt32, file: FileKind, first: UInt32, mask: UInt32) {
        self.campaign = campaign
        self.file = file
        self.first = first
        self.mask = mask
    }

    public var blocks: [UInt32] {
        (0..<32).compactMap { bit in
            mask & (1 << UInt32(bit)) != 0 && first.addingReportingOverflow(UInt32(bit)).overflow == false
                ? first + UInt32(bit) : nil
        }
    }

    public var bytes: [UInt8] {
        var writer = JSONWriter(capacity: 96)
        writer.beginObject()
        writer.field("campaign", Int64(campaign))
        writer.field("file", file.name)
        writer.field("first", Int64(first))
        if mask != .max, mask & (mask &+ 1) == 0 {
            writer.field("count", Int64(mask.nonzeroBitCount))
        } else {
            writer.field("mask", Int64(mask))
        }
        writer.endObject()
        return writer.bytes
    }

    public init(bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count <= 512 else { throw ProtocolError("get is longer than 512 bytes") }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch { throw ProtocolError("get is not JSON: \(error)") }
        guard case .int(let campaign)? = value["campaign"], (1...Int64(UInt32.max)).contains(campaign) else {
            throw ProtocolError("get.campaign must be an integer 1...4294967295")
        }
        guard let file = value["file"]?.string.flatMap(FileKind.init(name:)) else {
            throw ProtocolError("get.file must be \"full\" or \"delta\"")
        }
        guard case .int(let first)? = value["first"], (0...Int64(UInt32.max)).contains(first) else {
            throw ProtocolError("get.first must be a block index")
        }
        switch (value["count"], value["mask"]) {
        case (.int(let count)?, nil) where (1...Int64(Self.maxBlocks)).contains(count):
            self.init(campaign: UInt32(campaign), file: file, first: UInt32(first), count: Int(count))
        case (nil, .int(let mask)?) where (1...Int64(UInt32.max)).contains(mask):
            self.init(campaign: UInt32(campaign), file: file, first: UInt32(first), mask: UInt32(mask))
        default:
            throw ProtocolError("get needs count (1...32) or mask (a non-zero 32-bit bitmap), not both")
        }
    }
}

/// The 16-byte header of `v1/ota/{vin}/data`, big-endian, followed by the block's bytes.
public struct DataHeader: Sendable, Equatable {
    public static let length = 16
    public static let version: UInt8 = 1

    public var file: FileKind
    public var campaign: UInt32
    public var block: UInt32
    public var payloadLength: UInt32

    public init(file: FileKind, campaign: UInt32, block: UInt32, payloadLength: UInt32) {
        self.file = file
        self.campaign = campaign
        self.block = block
        self.payloadLength = payloadLength
    }

    public func write(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.length)
        buffer[0] = Self.version
        buffer[1] = file.rawValue
        buffer[2] = 0
        buffer[3] = 0
        for (offset, value) in [(4, campaign), (8, block), (12, payloadLength)] {
            buffer[offset] = UInt8(truncatingIfNeeded: value >> 24)
            buffer[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
            buffer[offset + 2] = UInt8(truncatingIfNeeded: value >> 8)
            buffer[offset + 3] = UInt8(truncatingIfNeeded: value)
        }
    }

    public var bytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.length)
        bytes.withUnsafeMutableBytes { write(into: $0) }
        return bytes
    }

    /// The header of a data message, checked against the message's length.
    public init(message: some Collection<UInt8>) throws(ProtocolError) {
        guard message.count >= Self.length else { throw ProtocolError("data message shorter than its 16-byte header") }
        let header = Array(message.prefix(Self.length))
        guard header[0] == Self.version else { throw ProtocolError("data header version \(header[0]), expected 1") }
        guard let file = FileKind(rawValue: header[1]), header[2] == 0, header[3] == 0 else {
            throw ProtocolError("data header file \(header[1]) or reserved bytes invalid")
        }
        func word(_ offset: Int) -> UInt32 {
            UInt32(header[offset]) << 24 | UInt32(header[offset + 1]) << 16 | UInt32(header[offset + 2]) << 8
                | UInt32(header[offset + 3])
        }
        self.file = file
        campaign = word(4)
        block = word(8)
        payloadLength = word(12)
        guard Int(payloadLength) == message.count - Self.length else {
            throw ProtocolError("data header says \(payloadLength) bytes, \(message.count - Self.length) followed")
        }
    }
}

/// Per-vehicle execution states, as the gateway records them. A vehicle reports the ones
/// it drives (`downloading` ... `rejected`); the gateway adds `queued`, `offered`,
/// `timed_out` and `canceled`.
public enum VehicleState: String, Sendable, Equatable, CaseIterable {
    case queued, offered, downloading, downloaded, installing, installed, failed, rejected
    case timedOut = "timed_out"
    case canceled

    public var isTerminal: Bool {
        switch self {
        case .installed, .failed, .rejected, .timedOut, .canceled: true
        default: false
        }
    }

    /// Counts against the abort threshold.
    public var isFailure: Bool { self == .failed || self == .rejected || self == .timedOut }
}

/// What a vehicle has installed, as it reports it.
public struct InstalledFirmware: Sendable, Equatable {
    public var hardwareID: String
    public var version: String
    public var counter: UInt64
    public var sha256: String

    public init(hardwareID: String, version: String, counter: UInt64, sha256: String) {
        self.hardwareID = hardwareID
        self.version = version
        self.counter = counter
        self.sha256 = sha256
    }
}

/// `v1/ota/{vin}/status`: what a vehicle is doing. `campaign` 0 with state `idle` is the
/// report a vehicle sends on every connect, which is how the gateway learns its firmware.
public struct VehicleReport: Sendable, Equatable {
    public enum State: String, Sendable, Equatable {
        case idle, downloading, downloaded, installing, installed, failed, rejected, paused, canceled
    }

    public var campaign: UInt32
    public var state: State
    public var blocksDone: Int?
    public var blocksTotal: Int?
    /// Blocks received in all, duplicates included, since the vehicle first saw the offer.
    public var fetchedBlocks: Int?
    public var installed: InstalledFirmware?
    public var reason: String?
    public var detail: String?

    public init(
        campaign: UInt32, state: State, blocksDone: Int? = nil, blocksTotal: Int? = nil, fetchedBlocks: Int? = nil,
        installed: InstalledFirmware? = nil, reason: String? = nil, detail: String? = nil
    ) {
        self.campaign = campaign
        self.state = state
        self.blocksDone = blocksDone
        self.blocksTotal = blocksTotal
        self.fetchedBlocks = fetchedBlocks
        self.installed = installed
        self.reason = reason
        self.detail = detail
    }

    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("campaign", .int(Int64(campaign))), ("state", .string(state.rawValue)),
        ]
        if let blocksDone { members.append(("blocks_done", .int(Int64(blocksDone)))) }
        if let blocksTotal { members.append(("blocks_total", .int(Int64(blocksTotal)))) }
        if let fetchedBlocks { members.append(("fetched_blocks", .int(Int64(fetchedBlocks)))) }
        if let installed {
            members.append(
                (
                    "installed",
                    .object(
                        JSONObject([
                            ("hardware_id", .string(installed.hardwareID)), ("version", .string(installed.version)),
                            ("counter", .int(Int64(installed.counter))), ("sha256", .string(installed.sha256)),
                        ]))
                ))
        }
        if let reason { members.append(("reason", .string(reason))) }
        if let detail { members.append(("detail", .string(detail))) }
        return .object(JSONObject(members))
    }

    public init(bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count <= 4096 else { throw ProtocolError("status is longer than 4096 bytes") }
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch { throw ProtocolError("status is not JSON: \(error)") }
        guard case .int(let campaign)? = value["campaign"], (0...Int64(UInt32.max)).contains(campaign) else {
            throw ProtocolError("status.campaign must be an integer 0...4294967295")
        }
        guard let stateName = value["state"]?.string, let state = State(rawValue: stateName) else {
            throw ProtocolError("status.state must be one of idle, downloading, downloaded, installing, installed, failed, rejected, paused, canceled")
        }
        func count(_ key: String) throws(ProtocolError) -> Int? {
            switch value[key] {
            case nil: return nil
            case .int(let number)? where (0...Int64(UInt32.max)).contains(number): return Int(number)
            default: throw ProtocolError("status.\(key) must be a non-negative integer")
            }
        }
        self.campaign = UInt32(campaign)
        self.state = state
        blocksDone = try count("blocks_done")
        blocksTotal = try count("blocks_total")
        fetchedBlocks = try count("fetched_blocks")
        if let installed = value["installed"] {
            guard let hardware = installed["hardware_id"]?.string, hardware.utf8.count <= 64,
                let version = installed["version"]?.string, version.utf8.count <= 64,
                case .int(let counter)? = installed["counter"], counter >= 0, let sha = installed["sha256"]?.string,
                sha.utf8.count == 64
            else { throw ProtocolError("status.installed must be {hardware_id, version, counter, sha256}") }
            self.installed = InstalledFirmware(hardwareID: hardware, version: version, counter: UInt64(counter), sha256: sha)
        }
        func text(_ key: String) throws(ProtocolError) -> String? {
            switch value[key] {
            case nil: return nil
            case .string(let text)? where text.utf8.count <= 512: return text
            default: throw ProtocolError("status.\(key) must be a string of at most 512 bytes")
            }
        }
        reason = try text("reason")
        detail = try text("detail")
    }
}

/// `v1/ota/{vin}/cmd`: the gateway tells a vehicle to pause, resume or drop a campaign.
public struct OTACommand: Sendable, Equatable {
    public enum Verb: String, Sendable { case pause, resume, cancel }

    public var campaign: UInt32
    public var verb: Verb

    public init(campaign: UInt32, verb: Verb) {
        self.campaign = campaign
        self.verb = verb
    }

    public var bytes: [UInt8] {
        Array(#"{"campaign":\#(campaign),"command":"\#(verb.rawValue)"}"#.utf8)
    }

    public init(bytes: [UInt8]) throws(ProtocolError) {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch { throw ProtocolError("cmd is not JSON: \(error)") }
        guard case .int(let campaign)? = value["campaign"], (1...Int64(UInt32.max)).contains(campaign),
            let verb = value["command"]?.string.flatMap(Verb.init(rawValue:))
        else { throw ProtocolError("cmd must be {campaign, command: pause|resume|cancel}") }
        self.campaign = UInt32(campaign)
        self.verb = verb
    }
}
