import Crypto
import Delta
import Foundation
import JSON
import OTA
import Telemetry

/// `gwctl ota ...`: keys, signing (offline), uploads and campaigns.
enum OTACommands {
    static func readFile(_ path: String) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)", code: 66) }
        return Array(data)
    }

    static func required(_ name: String) -> String {
        guard let value = arguments.value(name), !value.isEmpty else { fail("\(name) is required", code: 64) }
        return value
    }

    // MARK: - keygen

    static func keygen() {
        let base = required("--out")
        let key: Ed25519.PrivateKey
        do { key = try Ed25519.PrivateKey() } catch { fail("key generation failed: \(error)") }
        let privatePath = base + ".key"
        guard !FileManager.default.fileExists(atPath: privatePath) else {
            fail("\(privatePath) exists; refusing to overwrite a signing key", code: 73)
        }
        do {
            try createSecretFile(privatePath, key.pem)
        } catch .create(let reason) {
            fail("cannot create \(privatePath): \(reason)", code: 73)
        } catch {
            fail("cannot write \(privatePath)", code: 74)
        }
        let publicKey = key.publicKey
        guard FileManager.default.createFile(atPath: base + ".pub", contents: Data(publicKey.pem.utf8)) else {
            fail("cannot write \(base).pub", code: 73)
        }
        if wantsJSON {
            print(
                JSONValue.object(
                    JSONObject([
                        ("private_key_file", .string(privatePath)), ("public_key_file", .string(base + ".pub")),
                        ("public_key", .string(Hex.encode(publicKey.raw))), ("key_id", .string(publicKey.keyID)),
                    ])
                ).serialized())
            return
        }
        print("private key  \(privatePath) (mode 0600: keep it off the gateway)")
        print("public key   \(base).pub")
        print("key id       \(publicKey.keyID)")
        print("")
        print("For gatewayd's config and each vehicle's provisioning:")
        print("  \"ota\": {\"trusted_keys\": [\"\(Hex.encode(publicKey.raw))\"]}")
    }

    // MARK: - sign / push

    struct Release {
        var signed: SignedManifest
        var image: [UInt8]
        var delta: [UInt8]?
    }

    static func loadKeys() -> [Ed25519.PrivateKey] {
        required("--key").split(separator: ",").map { path in
            let text = String(decoding: readFile(String(path)), as: UTF8.self)
            do { return try Ed25519.PrivateKey(pem: text) } catch {
                fail("\(path) is not an Ed25519 private key in PEM (gwctl ota keygen makes one): \(error)", code: 65)
            }
        }
    }

    /// Builds and signs the manifest for IMAGE from the options (and the delta with --from).
    static func buildRelease(imagePath: String) -> Release {
        let image = readFile(imagePath)
        guard !image.isEmpty else { fail("\(imagePath) is empty", code: 65) }
        let version = required("--version")
        guard let counter = UInt64(required("--counter")), counter >= 1 else {
            fail("--counter must be a positive integer (the anti-rollback release counter)", code: 64)
        }
        let hardware = required("--hw")
        let targets: ReleaseManifest.Targets
        if let list = arguments.value("--vins") {
            var vins: [VIN] = []
            for text in list.split(separator: ",") {
                guard let vin = VIN(text.trimmingCharacters(in: .whitespaces)) else {
                    fail("\(text) is not a VIN (17 of A-Z 0-9 without I O Q)", code: 64)
                }
                vins.append(vin)
            }
            targets = .vins(vins)
        } else if arguments.flag("--all") {
            targets = .all
        } else {
            fail("say which vehicles: --vins V1,V2 or --all (every vehicle of --hw)", code: 64)
        }
        let days = Int64(arguments.value("--expires-days") ?? "30") ?? -1
        guard days >= 1, days <= 3650 else { fail("--expires-days must be 1 to 3650", code: 64) }
        let now = Int64(Date().timeIntervalSince1970)
        var delta: [UInt8]?
        var deltas: [ReleaseManifest.Delta] = []
        if let from = arguments.value("--from") {
            let old = readFile(from)
            let started = Date()
            let patch = DeltaEncoder.diff(old: old, new: image)
            FileHandle.standardError.write(
                Data(
                    "delta: \(patch.count) bytes for an image of \(image.count) (\(String(format: "%.1f", Double(patch.count) * 100 / Double(image.count)))%), \(String(format: "%.1f", Date().timeIntervalSince(started))) s\n"
                        .utf8))
            deltas.append(
                .init(
                    fromSHA256: SHA256.hex(old), patchSHA256: SHA256.hex(patch), patchLength: UInt64(patch.count),
                    format: DeltaFormat.name))
            delta = patch
        }
        let name = arguments.value("--name") ?? URL(fileURLWithPath: imagePath).deletingPathExtension().lastPathComponent
        let manifest = ReleaseManifest(
            name: String(name.map { ReleaseManifestName.allowed($0) ? $0 : "-" }.prefix(64)), version: version,
            releaseCounter: counter, hardwareID: hardware, length: UInt64(image.count), sha256: SHA256.hex(image),
            deltas: deltas, targets: targets, created: now, expires: now + days * 86_400)
        // Parsed back, so what is signed is exactly what a vehicle will accept.
        do { _ = try ReleaseManifest(json: manifest.json) } catch { fail("\(error)", code: 64) }
        return Release(signed: SignedManifest.sign(manifest, with: loadKeys()), image: image, delta: delta)
    }

    static func sign(_ imagePath: String) {
        let release = buildRelease(imagePath: imagePath)
        let text = release.signed.json.serialized(pretty: true) + "\n"
        if let out = arguments.value("--out") {
            guard FileManager.default.createFile(atPath: out, contents: Data(text.utf8)) else {
                fail("cannot write \(out)", code: 73)
            }
            FileHandle.standardError.write(Data("manifest written to \(out)\n".utf8))
        } else {
            print(text, terminator: "")
        }
        if let delta = release.delta {
            let path = arguments.value("--delta-out") ?? (imagePath + ".tgdiff")
            guard FileManager.default.createFile(atPath: path, contents: Data(delta)) else { fail("cannot write \(path)") }
            FileHandle.standardError.write(Data("delta written to \(path)\n".utf8))
        }
    }

    static func push(_ imagePath: String) throws(ClientError) {
        let release: Release
        if let manifestPath = arguments.value("--manifest") {
            // Signed elsewhere (an offline signing machine): upload as it is.
            let signed: SignedManifest
            do { signed = try SignedManifest(bytes: readFile(manifestPath)) } catch { fail("\(manifestPath): \(error)", code: 65) }
            let delta = arguments.value("--delta").map(readFile)
            release = Release(signed: signed, image: readFile(imagePath), delta: delta)
        } else {
            release = buildRelease(imagePath: imagePath)
        }
        try upload(release.image, label: "image")
        if let delta = release.delta { try upload(delta, label: "delta") }
        let manifestBody = Data(release.signed.json.serialized().utf8)
        let stored = try client.send("POST", "/v1/ota/manifests", json: manifestBody)
        guard let manifest = try? JSONParser.parse(Array(stored.body)), case .int(let manifestID)? = manifest["id"] else {
            throw .badResponse("no manifest id")
        }
        var campaign = campaignSettings()
        campaign.members.insert(("manifest", .int(manifestID)), at: 0)
        let created = try client.send(
            "POST", "/v1/ota/campaigns", json: Data(JSONValue.object(campaign).serialized().utf8))
        if wantsJSON { return Commands.emit(created) }
        guard let body = try? JSONParser.parse(Array(created.body)) else { throw .badResponse("campaign not JSON") }
        let release_ = release.signed.manifest
        print(
            "campaign \(number(body["id"])) created: \(release_.name) \(release_.version) (counter \(release_.releaseCounter)) "
                + "to \(number(body["targets"])) vehicle(s) of \(release_.hardwareID), manifest \(manifestID)"
                + (stored.status == 200 ? " (already stored)" : ""))
        print("follow it with: gwctl ota status \(number(body["id"])) --watch")
    }

    /// The campaign settings from --waves, --success-pct, … (`campaignOptions`), as the REST API
    /// and fleet campaign documents take them.
    static func campaignSettings() -> JSONObject {
        var settings: [(key: String, value: JSONValue)] = []
        if let waves = arguments.value("--waves") {
            let values = waves.split(separator: ",").map { Int64($0.trimmingCharacters(in: .whitespaces)) }
            guard values.allSatisfy({ $0 != nil }) else { fail("--waves takes percentages such as 5,25,100", code: 64) }
            settings.append(("waves", .array(values.map { .int($0!) })))
        }
        for (option, key) in [
            ("--success-pct", "success_pct"), ("--abort-failure-pct", "abort_failure_pct"),
            ("--abort-min-finished", "abort_min_finished"), ("--timeout", "vehicle_timeout_s"), ("--retries", "retries"),
        ] {
            guard let text = arguments.value(option) else { continue }
            guard let number = Int64(text) else { fail("\(option) must be an integer", code: 64) }
            settings.append((key, .int(number)))
        }
        if let window = arguments.value("--window") { settings.append(("window", .string(window))) }
        return JSONObject(settings)
    }

    /// Uploads a blob in 1 MiB chunks from where the gateway's copy ends, so an interrupted
    /// push resumes instead of starting over; retries a failed chunk after asking again.
    static func upload(_ bytes: [UInt8], label: String) throws(ClientError) {
        let sha = SHA256.hex(bytes)
        let path = "/v1/ota/blobs/\(sha)"
        let chunk = 1 << 20
        var failures = 0
        var received = try blobReceived(path)
        let started = Date()
        var shown = false
        while received < bytes.count {
            let end = min(bytes.count, received + chunk)
            do {
                let response = try client.send(
                    "PUT", path, query: [("offset", String(received)), ("length", String(bytes.count))],
                    json: Data(bytes[received..<end]), contentType: "application/octet-stream", timeout: 60)
                let status = try? JSONParser.parse(Array(response.body))
                received = Int(integer(status?["received"]))
                failures = 0
            } catch {
                failures += 1
                if failures > 5 { throw error }
                FileHandle.standardError.write(Data("\n\(label): \(error); resuming\n".utf8))
                usleep(UInt32(500_000 * failures))
                received = try blobReceived(path)
            }
            progress(label, done: received, total: bytes.count, started: started)
            shown = true
        }
        if !shown { progress(label, done: bytes.count, total: bytes.count, started: started) }
        FileHandle.standardError.write(Data("\n".utf8))
    }

    static func blobReceived(_ path: String) throws(ClientError) -> Int {
        let response = try client.get(path)
        guard let status = try? JSONParser.parse(Array(response.body)) else { throw .badResponse("blob status not JSON") }
        return Int(integer(status["received"]))
    }

    static func progress(_ label: String, done: Int, total: Int, started: Date) {
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let seconds = max(0.001, Date().timeIntervalSince(started))
        let line = String(
            format: "\r%@ %@ %3.0f%% %.1f/%.1f MiB %.1f MiB/s", label.padding(toLength: 6, withPad: " ", startingAt: 0),
            bar(fraction, width: 30), fraction * 100, Double(done) / 1_048_576, Double(total) / 1_048_576,
            Double(done) / 1_048_576 / seconds)
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func bar(_ fraction: Double, width: Int) -> String {
        let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded())
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    // MARK: - campaigns

    static func list() throws(ClientError) {
        let (body, response) = try client.json("/v1/ota/campaigns")
        if wantsJSON { return Commands.emit(response) }
        guard case .array(let campaigns)? = body["campaigns"] else { throw .badResponse("no campaigns array") }
        let rows = campaigns.map { campaign -> [String] in
            let counts = campaign["counts"]
            return [
                number(campaign["id"]), text(campaign["state"]), text(campaign["release"]),
                number(campaign["release_counter"]), text(campaign["hardware_id"]),
                "\(number(campaign["wave"]))/\(campaign["settings"]?["waves"]?.arrayValue?.count ?? 0)",
                number(campaign["targets"]), number(counts?["installed"]),
                String(
                    integer(counts?["failed"]) + integer(counts?["rejected"]) + integer(counts?["timed_out"])),
                age(integer(campaign["updated_ms"])),
            ]
        }
        print(table(["ID", "STATE", "RELEASE", "COUNTER", "HW", "WAVE", "TARGETS", "INSTALLED", "FAILED", "UPDATED"], rows))
    }

    static func status(_ id: String?) throws(ClientError) {
        guard let id else { return try list() }
        guard UInt32(id) != nil else { fail("campaign ids are positive integers, got \(id)", code: 64) }
        let watch = arguments.flag("--watch")
        repeat {
            let (body, response) = try client.json("/v1/ota/campaigns/\(id)")
            if wantsJSON {
                Commands.emit(response)
            } else {
                if watch { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                printCampaign(body)
            }
            let state = body["state"]?.string ?? ""
            if !watch || ["completed", "aborted", "canceled"].contains(state) { break }
            usleep(1_000_000)
        } while true
    }

    static func printCampaign(_ body: JSONValue) {
        let counts = body["counts"]
        let waves = body["settings"]?["waves"]?.arrayValue?.map(number).joined(separator: ",") ?? ""
        print(
            "campaign \(number(body["id"])) \(text(body["state"]))\(body["reason"]?.string.map { " (\($0))" } ?? "")")
        print(
            "release  \(text(body["release"])) counter \(number(body["release_counter"])) hardware \(text(body["hardware_id"]))")
        print("wave     \(number(body["wave"])) of [\(waves)] %, \(number(body["targets"])) vehicles")
        let order = ["queued", "offered", "downloading", "downloaded", "installing", "installed", "failed", "rejected", "timed_out", "canceled"]
        print("states   " + order.compactMap { state in
            let count = integer(counts?[state])
            return count > 0 ? "\(state) \(count)" : nil
        }.joined(separator: ", "))
        guard case .array(let vehicles)? = body["vehicles"] else { return }
        print("")
        let rows = vehicles.map { vehicle -> [String] in
            let total = integer(vehicle["blocks_total"])
            let done = integer(vehicle["blocks_done"])
            let state = text(vehicle["state"])
            let fraction = state == "installed" ? 1 : total > 0 ? Double(done) / Double(total) : 0
            return [
                text(vehicle["vin"]), number(vehicle["wave"]), state, text(vehicle["file"]),
                bar(fraction, width: 20) + String(format: " %3.0f%%", fraction * 100), number(vehicle["attempts"]),
                [vehicle["reason"]?.string, vehicle["detail"]?.string].compactMap { $0 }.joined(separator: ": "),
            ]
        }
        print(table(["VIN", "WAVE", "STATE", "FILE", "PROGRESS", "TRIES", "REASON"], rows))
    }

    static func control(_ verb: String, _ id: String) throws(ClientError) {
        guard UInt32(id) != nil else { fail("campaign ids are positive integers, got \(id)", code: 64) }
        let response = try client.send("POST", "/v1/ota/campaigns/\(id)/\(verb)")
        if wantsJSON { return Commands.emit(response) }
        guard let body = try? JSONParser.parse(Array(response.body)) else { throw .badResponse("not JSON") }
        print("campaign \(id): \(text(body["state"]))")
    }

    static func vehicles() throws(ClientError) {
        let (body, response) = try client.json("/v1/ota/vehicles")
        if wantsJSON { return Commands.emit(response) }
        let rows = (body["vehicles"]?.arrayValue ?? []).map { vehicle in
            [
                text(vehicle["vin"]), text(vehicle["hardware_id"]), text(vehicle["version"]), number(vehicle["counter"]),
                String(text(vehicle["sha256"]).prefix(16)),
            ]
        }
        print(table(["VIN", "HW", "VERSION", "COUNTER", "SHA256"], rows))
    }
}

enum ReleaseManifestName {
    static func allowed(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "." || character == "_" || character == "-")
    }
}
