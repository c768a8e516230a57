import Crypto
import Delta
import Foundation
import JSON
import Logging
import MQTT
import OTA
import Synchronization
import Telemetry

/// Options of the OTA fleet (`--ota-*`).
struct OTAOptions {
    var vehicles = 0
    var directory = ""
    var trustedKeys: [String] = []
    var threshold = 1
    var hardwareID = "tgu-1"
    var firmwareFile: String?
    var version = "1.0.0"
    var counter: UInt64 = 1
    var failRate = 0.0
    var disconnectAt = 0.0
    var requestsInFlight = 2
    var vinOffset = 0
    var installMs = 200
}

/// One simulated vehicle unit implementing `Firmware-Protocols/ota.md` faithfully: it trusts
/// only the operator keys it was provisioned with, runs every check of the trust model
/// itself, writes blocks straight to flash (a file), keeps a persisted bitmap so it resumes
/// after a disconnect or a reboot, applies deltas streaming, and keeps its installed version
/// and counter across restarts. It is the reference client for firmware teams.
final class OTAVehicle: @unchecked Sendable {
    // Confined to the vehicle's own thread, except `stats` (atomics) and the client handle.
    let vin: VIN
    let options: OTAOptions
    let host: String
    let port: Int
    let directory: String
    let policy: TrustPolicy
    let logger: Logger
    var random: SplitMix64
    var client: MQTTClient?
    var installed: InstalledFirmware
    var download: Download?
    var paused = false
    var disconnected = false
    var wasConnected = false
    let stats: FleetStats

    /// A transfer in progress: the offer, the part file and the bitmap of blocks held.
    struct Download {
        var offer: Offer
        var fd: Int32
        var mapFD: Int32
        var have: [Bool]
        var done: Int
        var fetched: Int
        var nextToAsk = 0
        /// Requests sent and not yet satisfied: (first block, mask, sent at).
        var requests: [(first: UInt32, mask: UInt32, sentNanos: UInt64)] = []
        var lastReportedDecile = -1
        var sinceBitmapSave = 0
    }

    init(
        index: Int, options: OTAOptions, host: String, port: Int, policy: TrustPolicy, stats: FleetStats,
        logger: Logger
    ) throws {
        let number = String(options.vinOffset + index + 1)
        vin = VIN("1TGSV" + String(repeating: "0", count: 12 - number.count) + number)!
        self.options = options
        self.host = host
        self.port = port
        self.policy = policy
        self.stats = stats
        self.logger = logger.with("vin", vin.value)
        random = SplitMix64(state: UInt64(options.vinOffset + index + 1) &* 0x9E37_79B9)
        directory = options.directory + "/" + vin.value
        try FileManager.default.createDirectory(atPath: directory + "/download", withIntermediateDirectories: true)
        installed = InstalledFirmware(hardwareID: options.hardwareID, version: options.version, counter: options.counter, sha256: "")
        installed = try loadOrProvision()
    }

    static func vinFor(index: Int, offset: Int) -> String {
        let number = String(offset + index + 1)
        return "1TGSV" + String(repeating: "0", count: 12 - number.count) + number
    }

    // MARK: - Persistent state

    var firmwarePath: String { directory + "/firmware.bin" }
    var installedPath: String { directory + "/installed.json" }

    /// The installed image and its record; provisioned at first start ("manufacture").
    private func loadOrProvision() throws -> InstalledFirmware {
        if let data = FileManager.default.contents(atPath: installedPath),
            let value = try? JSONParser.parse(Array(data)), let version = value["version"]?.string,
            case .int(let counter)? = value["counter"], let sha = value["sha256"]?.string,
            let hardware = value["hardware_id"]?.string
        {
            return InstalledFirmware(hardwareID: hardware, version: version, counter: UInt64(counter), sha256: sha)
        }
        if !FileManager.default.fileExists(atPath: firmwarePath) {
            if let source = options.firmwareFile {
                try FileManager.default.copyItem(atPath: source, toPath: firmwarePath)
            } else {
                var bytes = [UInt8](repeating: 0, count: 65_536)
                var seed = SplitMix64(state: 42)
                for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: seed.next()) }
                FileManager.default.createFile(atPath: firmwarePath, contents: Data(bytes))
            }
        }
        guard let sha = SHA256Hasher.file(atPath: firmwarePath) else {
            throw OTASimError("cannot read \(firmwarePath)")
        }
        let record = InstalledFirmware(
            hardwareID: options.hardwareID, version: options.version, counter: options.counter, sha256: Hex.encode(sha))
        try saveInstalled(record)
        return record
    }

    private func saveInstalled(_ record: InstalledFirmware) throws {
        let json = JSONValue.object(
            JSONObject([
                ("hardware_id", .string(record.hardwareID)), ("version", .string(record.version)),
                ("counter", .int(Int64(record.counter))), ("sha256", .string(record.sha256)),
            ]))
        try atomicWrite(Array(json.serialized().utf8), to: installedPath)
    }

    private func atomicWrite(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OTASimError("cannot write \(temporary)") }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else { throw OTASimError("cannot rename \(temporary)") }
    }

    func partPath(_ sha: String) -> String { directory + "/download/\(sha).part" }
    func bitmapPath(_ sha: String) -> String { directory + "/download/\(sha).map" }

    /// The bitmap is one byte per block, rewritten in place: each byte is 0 or 1 on its own, so
    /// a torn write leaves a valid (older) map, and the part file is synced first, so a 1 is
    /// never on flash before its block is.
    private func saveBitmap(_ download: inout Download) {
        download.sinceBitmapSave = 0
        fdatasync(download.fd)
        let bytes = download.have.map { $0 ? UInt8(1) : UInt8(0) }
        _ = bytes.withUnsafeBytes { pwrite(download.mapFD, $0.baseAddress, $0.count, 0) }
    }

    // MARK: - Connection

    func connect() throws {
        var configuration = MQTTClient.Configuration(clientID: "gwsim-ota-\(vin.value)")
        configuration.host = host
        configuration.port = port
        // A persistent session, as a vehicle unit keeps: commands sent while it was away arrive.
        configuration.cleanSession = false
        configuration.maxInboundPayloadBytes = Offer.maxBlockSize + DataHeader.length + SignedManifest.maxBytes
        configuration.inboundCapacity = 256
        configuration.subscriptions = [
            (OTATopic.topic(.offer, vin: vin), 1), (OTATopic.topic(.data, vin: vin), 0),
            (OTATopic.topic(.cmd, vin: vin), 1),
        ]
        let client = try MQTTClient(configuration: configuration, logger: logger)
        client.start()
        self.client = client
        wasConnected = false
    }

    func publishStatus(_ report: VehicleReport) {
        do {
            try client?.publish(topic: OTATopic.topic(.status, vin: vin), payload: Array(report.json.serialized().utf8), qos: 1)
        } catch {
            logger.debug("ota_status_not_sent", [("error", error.description)])
        }
    }

    func idleReport() -> VehicleReport { VehicleReport(campaign: 0, state: .idle, installed: installed) }

    // MARK: - Main loop

    func run(stop: borrowing Atomic<Bool>) {
        var batch: [InboundMessage] = []
        while !stop.load(ordering: .relaxed) {
            guard let client else { return }
            if client.isConnected && !wasConnected {
                wasConnected = true
                // The report that tells the gateway what this vehicle runs.
                publishStatus(idleReport())
            } else if !client.isConnected {
                wasConnected = false
            }
            batch.removeAll(keepingCapacity: true)
            _ = client.inbound.drain(into: &batch, max: 64, deadlineNanos: monotonicNanos() + 50_000_000)
            for message in batch { handle(message) }
            requestBlocks()
        }
        if var download {
            saveBitmap(&download)
            self.download = download
        }
        client?.stop()
    }

    private func handle(_ message: InboundMessage) {
        guard let (_, kind) = OTATopic.parse(message.topic) else { return }
        switch kind {
        case .offer:
            if message.payload.isEmpty {
                // The gateway withdrew the offer: stop asking, keep what we have for a later one.
                closeDownload(deletePart: false)
            } else {
                handleOffer(message.payload)
            }
        case .data: handleBlock(message.payload)
        case .cmd:
            guard let command = try? OTACommand(bytes: message.payload), command.campaign == download?.offer.campaign
            else { return }
            switch command.verb {
            case .pause:
                paused = true
                publishStatus(progress(.paused))
            case .resume:
                paused = false
                publishStatus(progress(.downloading))
            case .cancel:
                let campaign = command.campaign
                closeDownload(deletePart: true)
                publishStatus(VehicleReport(campaign: campaign, state: .canceled, installed: installed))
            }
        default: break
        }
    }

    private func handleOffer(_ payload: [UInt8]) {
        let offer: Offer
        do {
            offer = try Offer(bytes: payload)
        } catch {
            stats.add(.malformedOffers)
            logger.warning(
                "ota_offer_malformed",
                [
                    ("campaign", error.campaign.map(String.init) ?? "unreadable"), ("reason", error.code),
                    ("error", error.description),
                ])
            // ota.md §5: answer `rejected` when the campaign can be read; a new offer replaces
            // whatever was being downloaded, even a broken one.
            guard let campaign = error.campaign else { return }
            closeDownload(deletePart: false)
            stats.add(.rejected)
            publishStatus(
                VehicleReport(
                    campaign: campaign, state: .rejected, installed: installed, reason: error.code,
                    detail: String(error.description.prefix(512))))
            return
        }
        if let current = download, current.offer == offer { return }
        closeDownload(deletePart: false)
        let release = offer.manifest.manifest
        // Already running this release (an offer still retained after our report was lost).
        if release.sha256 == installed.sha256, release.releaseCounter == installed.counter {
            publishStatus(VehicleReport(campaign: offer.campaign, state: .installed, installed: installed))
            return
        }
        do {
            try VehicleCheck.evaluate(
                offer.manifest, policy: policy,
                vehicle: VehicleIdentity(
                    vin: vin, hardwareID: installed.hardwareID, installedCounter: installed.counter,
                    installedSHA256: installed.sha256), nowSeconds: Int64(Date().timeIntervalSince1970))
            try offer.matchesManifest(installedSHA256: installed.sha256)
        } catch {
            reject(offer.campaign, error)
            return
        }
        let file = offer.file
        let path = partPath(file.sha256)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0, ftruncate(fd, off_t(file.length)) == 0 else {
            publishStatus(VehicleReport(campaign: offer.campaign, state: .failed, reason: "storage", detail: "cannot open \(path)"))
            return
        }
        var have = [Bool](repeating: false, count: file.blockCount)
        if let saved = FileManager.default.contents(atPath: bitmapPath(file.sha256)), saved.count == have.count {
            for (index, byte) in saved.enumerated() { have[index] = byte == 1 }
        }
        let done = have.count { $0 }
        let mapFD = open(bitmapPath(file.sha256), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        download = Download(offer: offer, fd: fd, mapFD: mapFD, have: have, done: done, fetched: 0)
        paused = false
        stats.add(.offersAccepted)
        publishStatus(progress(.downloading))
        if done == have.count { finishDownload() }
    }

    private func reject(_ campaign: UInt32, _ error: ManifestError) {
        stats.add(.rejected)
        logger.warning("ota_rejected", [("campaign", String(campaign)), ("reason", error.code), ("detail", error.description)])
        publishStatus(
            VehicleReport(campaign: campaign, state: .rejected, installed: installed, reason: error.code, detail: error.description))
    }

    private func progress(_ state: VehicleReport.State) -> VehicleReport {
        guard let download else { return VehicleReport(campaign: 0, state: .idle, installed: installed) }
        return VehicleReport(
            campaign: download.offer.campaign, state: state, blocksDone: download.done,
            blocksTotal: download.have.count, fetchedBlocks: download.fetched, installed: installed)
    }

    private func handleBlock(_ payload: [UInt8]) {
        guard var download, let header = try? DataHeader(message: payload) else {
            stats.add(.strayBlocks)
            return
        }
        let file = download.offer.file
        guard header.campaign == download.offer.campaign, header.file == file.kind, Int(header.block) < download.have.count,
            Int(header.payloadLength) == file.blockLength(Int(header.block))
        else {
            // Not ours, or not the signed length: never written.
            stats.add(.strayBlocks)
            return
        }
        download.fetched += 1
        stats.add(.blocksReceived)
        let index = Int(header.block)
        if download.have[index] {
            stats.add(.duplicateBlocks)
        } else {
            let offset = off_t(index) * off_t(file.blockSize)
            let written = payload.withUnsafeBytes { raw in
                pwrite(download.fd, raw.baseAddress! + DataHeader.length, Int(header.payloadLength), offset)
            }
            guard written == Int(header.payloadLength) else {
                self.download = download
                return
            }
            download.have[index] = true
            download.done += 1
            download.sinceBitmapSave += 1
            if download.sinceBitmapSave >= 64 { saveBitmap(&download) }
        }
        download.requests.removeAll { request in
            (0..<32).allSatisfy { bit in
                request.mask & (1 << UInt32(bit)) == 0 || Int(request.first) + bit >= download.have.count
                    || download.have[Int(request.first) + bit]
            }
        }
        let decile = download.done * 10 / max(1, download.have.count)
        let report = decile != download.lastReportedDecile
        download.lastReportedDecile = decile
        self.download = download
        if report { publishStatus(progress(.downloading)) }
        if download.done == download.have.count {
            finishDownload()
            return
        }
        if options.disconnectAt > 0, !disconnected,
            Double(download.done) >= options.disconnectAt * Double(download.have.count)
        {
            simulateDisconnect()
        }
    }

    /// Keeps `requestsInFlight` requests of up to 32 blocks outstanding; asks again for blocks
    /// of a request that went unanswered for 3 s (a lost QoS 0 block, a gateway restart).
    private func requestBlocks() {
        guard var download, !paused, let client, client.isConnected, download.done < download.have.count else { return }
        let now = monotonicNanos()
        var sent = false
        for position in download.requests.indices where now - download.requests[position].sentNanos > 3_000_000_000 {
            var mask: UInt32 = 0
            let first = download.requests[position].first
            for bit in 0..<32 where Int(first) + bit < download.have.count && !download.have[Int(first) + bit] {
                mask |= 1 << UInt32(bit)
            }
            download.requests[position] = (first, mask, now)
            if mask != 0 {
                send(BlockRequest(campaign: download.offer.campaign, file: download.offer.file.kind, first: first, mask: mask))
                sent = true
                stats.add(.retries)
            }
        }
        while download.requests.count < options.requestsInFlight {
            // The next run of missing blocks after the last one asked for.
            var first = -1
            var scanned = 0
            var index = download.nextToAsk
            while scanned < download.have.count {
                if index >= download.have.count { index = 0 }
                if !download.have[index] && !download.requests.contains(where: { request in
                    index >= Int(request.first) && index < Int(request.first) + 32
                        && request.mask & (1 << UInt32(index - Int(request.first))) != 0
                }) {
                    first = index
                    break
                }
                index += 1
                scanned += 1
            }
            guard first >= 0 else { break }
            var mask: UInt32 = 0
            for bit in 0..<32 where first + bit < download.have.count && !download.have[first + bit] {
                mask |= 1 << UInt32(bit)
            }
            download.requests.append((UInt32(first), mask, now))
            download.nextToAsk = first + 32
            send(BlockRequest(campaign: download.offer.campaign, file: download.offer.file.kind, first: UInt32(first), mask: mask))
            sent = true
        }
        if sent || download.requests.count > 0 { self.download = download }
    }

    private func send(_ request: BlockRequest) {
        _ = try? client?.publish(topic: OTATopic.topic(.get, vin: vin), payload: request.bytes, qos: 0)
    }

    private func simulateDisconnect() {
        disconnected = true
        stats.add(.disconnects)
        if var download {
            saveBitmap(&download)
            download.requests.removeAll()
            self.download = download
        }
        client?.stop()
        client = nil
        usleep(1_000_000)
        try? connect()
    }

    private func closeDownload(deletePart: Bool) {
        guard var download else { return }
        saveBitmap(&download)
        close(download.fd)
        close(download.mapFD)
        if deletePart {
            unlink(partPath(download.offer.file.sha256))
            unlink(bitmapPath(download.offer.file.sha256))
        }
        self.download = nil
        paused = false
    }

    /// Every block is on flash: check the hash the manifest signs, apply a delta, install.
    private func finishDownload() {
        guard var download else { return }
        saveBitmap(&download)
        let offer = download.offer
        let release = offer.manifest.manifest
        let part = partPath(offer.file.sha256)
        let actual = SHA256Hasher.file(atPath: part).map(Hex.encode) ?? ""
        guard actual == offer.file.sha256 else {
            closeDownload(deletePart: true)
            reject(offer.campaign, .hashMismatch(expected: offer.file.sha256, actual: actual))
            return
        }
        publishStatus(progress(.downloaded))
        let staged = directory + "/staged.bin"
        if offer.file.kind == .delta {
            do {
                try applyDelta(patch: part, to: staged, maxLength: release.length)
            } catch {
                closeDownload(deletePart: true)
                reject(offer.campaign, .deltaFailed("\(error)"))
                return
            }
            let result = SHA256Hasher.file(atPath: staged).map(Hex.encode) ?? ""
            guard result == release.sha256 else {
                unlink(staged)
                closeDownload(deletePart: true)
                reject(offer.campaign, .hashMismatch(expected: release.sha256, actual: result))
                return
            }
        } else {
            unlink(staged)
            guard link(part, staged) == 0 else {
                publishStatus(VehicleReport(campaign: offer.campaign, state: .failed, reason: "storage", detail: "cannot stage"))
                return
            }
        }
        publishStatus(progress(.installing))
        usleep(UInt32(options.installMs) * 1000)
        if options.failRate > 0, Double(random.next() % 1_000_000) / 1_000_000 < options.failRate {
            stats.add(.installFailures)
            unlink(staged)
            let campaign = offer.campaign
            // The downloaded file stays: a retry installs it again without fetching.
            close(download.fd)
            close(download.mapFD)
            self.download = nil
            publishStatus(
                VehicleReport(
                    campaign: campaign, state: .failed, installed: installed, reason: "install_failed",
                    detail: "simulated flash write failure"))
            return
        }
        guard rename(staged, firmwarePath) == 0 else {
            publishStatus(VehicleReport(campaign: offer.campaign, state: .failed, reason: "storage", detail: "cannot install"))
            return
        }
        installed = InstalledFirmware(
            hardwareID: installed.hardwareID, version: release.version, counter: release.releaseCounter,
            sha256: release.sha256)
        try? saveInstalled(installed)
        let fetched = download.fetched
        let total = download.have.count
        closeDownload(deletePart: true)
        stats.add(.installed)
        publishStatus(
            VehicleReport(
                campaign: offer.campaign, state: .installed, blocksDone: total, blocksTotal: total,
                fetchedBlocks: fetched, installed: installed))
    }

    private func applyDelta(patch: String, to output: String, maxLength: UInt64) throws {
        let old = try FileImage(path: firmwarePath)
        let input = open(patch, O_RDONLY | O_CLOEXEC)
        let out = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer {
            if input >= 0 { close(input) }
            if out >= 0 { close(out) }
        }
        guard input >= 0, out >= 0 else { throw OTASimError("cannot open the patch or the staging file") }
        var applier = DeltaApplier(maxNewLength: maxLength)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            try buffer.withUnsafeBytes { raw in
                try applier.consume(UnsafeRawBufferPointer(rebasing: raw[0..<count]), old: old) { chunk in
                    guard write(out, chunk.baseAddress, chunk.count) == chunk.count else {
                        throw OTASimError("cannot write the staged image")
                    }
                }
            }
        }
        try applier.finish()
        fsync(out)
    }
}

/// The installed image on flash, read at random by the delta applier.
struct FileImage: OldImage {
    let fd: Int32
    let count: Int

    init(path: String) throws {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OTASimError("cannot open \(path)") }
        var info = stat()
        fstat(fd, &info)
        count = Int(info.st_size)
    }

    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard offset >= 0, offset + buffer.count <= count else { return false }
        return pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) == buffer.count
    }
}

struct OTASimError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Totals over the fleet, printed at the end. Atomics, not a lock: 200 vehicle threads count
/// every block they receive.
final class FleetStats: Sendable {
    enum Counter: CaseIterable {
        case installed, rejected, installFailures, offersAccepted, blocksReceived, duplicateBlocks, strayBlocks, retries, disconnects, malformedOffers
    }

    private let installed = Atomic<Int>(0)
    private let rejected = Atomic<Int>(0)
    private let installFailures = Atomic<Int>(0)
    private let offersAccepted = Atomic<Int>(0)
    private let blocksReceived = Atomic<Int>(0)
    private let duplicateBlocks = Atomic<Int>(0)
    private let strayBlocks = Atomic<Int>(0)
    private let retries = Atomic<Int>(0)
    private let disconnects = Atomic<Int>(0)
    private let malformedOffers = Atomic<Int>(0)

    func add(_ counter: Counter, _ value: Int = 1) {
        switch counter {
        case .installed: installed.wrappingAdd(value, ordering: .relaxed)
        case .rejected: rejected.wrappingAdd(value, ordering: .relaxed)
        case .installFailures: installFailures.wrappingAdd(value, ordering: .relaxed)
        case .offersAccepted: offersAccepted.wrappingAdd(value, ordering: .relaxed)
        case .blocksReceived: blocksReceived.wrappingAdd(value, ordering: .relaxed)
        case .duplicateBlocks: duplicateBlocks.wrappingAdd(value, ordering: .relaxed)
        case .strayBlocks: strayBlocks.wrappingAdd(value, ordering: .relaxed)
        case .retries: retries.wrappingAdd(value, ordering: .relaxed)
        case .disconnects: disconnects.wrappingAdd(value, ordering: .relaxed)
        case .malformedOffers: malformedOffers.wrappingAdd(value, ordering: .relaxed)
        }
    }

    var summary: String {
        [
            "installed=\(installed.load(ordering: .relaxed))",
            "rejected=\(rejected.load(ordering: .relaxed))",
            "install_failures=\(installFailures.load(ordering: .relaxed))",
            "offers_accepted=\(offersAccepted.load(ordering: .relaxed))",
            "blocks_received=\(blocksReceived.load(ordering: .relaxed))",
            "duplicate_blocks=\(duplicateBlocks.load(ordering: .relaxed))",
            "stray_blocks=\(strayBlocks.load(ordering: .relaxed))",
            "re_requests=\(retries.load(ordering: .relaxed))",
            "disconnects=\(disconnects.load(ordering: .relaxed))",
            "malformed_offers=\(malformedOffers.load(ordering: .relaxed))",
        ].joined(separator: " ")
    }
}
