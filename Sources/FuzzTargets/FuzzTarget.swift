import Crypto
import Delta
import Fleet
import Gateway
import HTTP
import JSON
import OTA
import Telemetry

/// The parsers that take bytes from outside — devices, HTTP clients, operators' uploads,
/// patches and the configuration file — each as one function of arbitrary bytes.
///
/// libFuzzer drives them in `gwfuzz` (built with `-sanitize=fuzzer,address`); the test suite
/// replays every input kept under `Tests/FuzzCorpus/` through the same functions, so a crash
/// found once stays fixed. A target never throws and never traps on any input: an input it
/// refuses is the expected outcome, a crash or a sanitizer report is the bug.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Telemetry: the first line is the MQTT topic, the rest the payload.
    case decoder
    /// An HTTP/1.1 request as it arrives on a connection: head, framing, chunked body.
    case http
    /// A signed release manifest as an operator uploads it, then as a vehicle checks it.
    case manifest
    /// The OTA messages: first byte picks offer, get, data header, status or command.
    case ota
    /// A `tgdiff1` patch applied to a fixed 4 KiB old image, new image capped at 1 MiB.
    case delta
    /// A gatewayd configuration file.
    case config
    /// What a gateway takes from the city broker for fleet OTA: first byte picks a signed order
    /// (then judged against a campaign at sequence 3), a blob chunk, a fetch request or a tally.
    case fleet

    public func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .decoder: Self.decoder(data)
        case .http: Self.http(data)
        case .manifest: Self.manifest(data)
        case .ota: Self.ota(data)
        case .delta: Self.delta(data)
        case .config: Self.config(data)
        case .fleet: Self.fleet(data)
        }
    }

    static let decoderInstance = Decoder()

    static func decoder(_ data: UnsafeRawBufferPointer) {
        let bytes = data.bindMemory(to: UInt8.self)
        let newline = bytes.firstIndex(of: 10) ?? bytes.count
        let topic = String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<newline]), as: UTF8.self)
        let payload = UnsafeBufferPointer(rebasing: bytes[min(newline + 1, bytes.count)...])
        _ = decoderInstance.decode(topic: topic, payload: payload, nowMs: 1_767_225_600_000)
    }

    static func http(_ data: UnsafeRawBufferPointer) {
        let buffer = Array(data)
        var scanned = 0
        var firstLineEnd: Int?
        let limits = RequestLimits()
        // Arrives in two pieces, as over TCP: the scanner must resume where it stopped.
        let split = buffer.count / 2
        do {
            var end = try RequestParser.findHeadEnd(
                Array(buffer[0..<split]), start: 0, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: limits)
            if end == nil {
                end = try RequestParser.findHeadEnd(
                    buffer, start: 0, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: limits)
            }
            guard let end else { return }
            let head = try RequestParser.parseHead(buffer[0..<end], limits: limits)
            if case .chunked = try RequestParser.framing(head) {
                var chunked = ChunkedDecoder(limit: 1 << 20)
                _ = try chunked.feed(buffer, from: end)
            }
        } catch {
            return
        }
    }

    static let trusted: TrustPolicy = {
        // The trusted key of Firmware-Protocols/vectors/ota.json, so the seeds from those
        // vectors pass the signature check and mutations reach the checks behind it.
        let raw: [UInt8] = [
            0x71, 0x26, 0x51, 0xf4, 0x50, 0xba, 0x05, 0xb6, 0x38, 0x98, 0xb9, 0x9e, 0xf5, 0xf7, 0xba, 0x45,
            0x63, 0x2e, 0x8e, 0x25, 0x27, 0xf7, 0xf7, 0x15, 0xcd, 0x67, 0x1e, 0xc4, 0x02, 0x4c, 0xc5, 0x1e,
        ]
        return TrustPolicy(keys: [try! Ed25519.PublicKey(raw: raw)], threshold: 1)
    }()

    static func manifest(_ data: UnsafeRawBufferPointer) {
        guard let signed = try? SignedManifest(bytes: Array(data)) else { return }
        let vehicle = VehicleIdentity(
            vin: VIN("1HGCM82633A004352")!, hardwareID: "tgu-1", installedCounter: 1,
            installedSHA256: String(repeating: "0", count: 64))
        _ = try? VehicleCheck.evaluate(signed, policy: trusted, vehicle: vehicle, nowSeconds: 1_767_225_600)
        _ = signed.manifest.delta(from: vehicle.installedSHA256)
        _ = try? signed.manifest.json.canonicalBytes()
    }

    static func ota(_ data: UnsafeRawBufferPointer) {
        guard let first = data.first else { return }
        let rest = Array(data.dropFirst())
        switch first % 5 {
        case 0: _ = try? Offer(bytes: rest)
        case 1: _ = try? BlockRequest(bytes: rest)
        case 2: _ = try? DataHeader(message: rest)
        case 3: _ = try? VehicleReport(bytes: rest)
        default: _ = try? OTACommand(bytes: rest)
        }
    }

    static func fleet(_ data: UnsafeRawBufferPointer) {
        guard let first = data.first else { return }
        let rest = Array(data.dropFirst())
        switch first % 4 {
        case 0:
            guard let document = try? FleetDocument(bytes: rest) else { return }
            _ = FleetOrderRule.judge(document, current: (3, String(repeating: "0", count: 64)))
            _ = try? TrustPolicy(keys: []).verify(document)
        case 1: _ = try? BlobChunk(decoding: rest)
        case 2: _ = try? FetchRequest(bytes: rest)
        default: _ = try? TallyMessage(bytes: rest)
        }
    }

    static let oldImage: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    static func delta(_ data: UnsafeRawBufferPointer) {
        var applier = DeltaApplier(maxNewLength: 1 << 20)
        var written = 0
        do {
            // Fed in three pieces, as blocks arrive on a vehicle.
            let third = data.count / 3
            for range in [0..<third, third..<(2 * third), (2 * third)..<data.count] {
                try applier.consume(UnsafeRawBufferPointer(rebasing: data[range]), old: oldImage) { written += $0.count }
            }
            try applier.finish()
        } catch {
            return
        }
        precondition(written <= 1 << 20, "the applier wrote past the signed length")
    }

    static func config(_ data: UnsafeRawBufferPointer) {
        guard let document = try? JSONParser.parse(Array(data)) else { return }
        let (configuration, problems) = GatewayConfiguration.parse(document)
        if problems.isEmpty { _ = configuration.json.serialized(pretty: true) }
    }
}
