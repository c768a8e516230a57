import Crypto
import Delta
import Foundation
import JSON
import OTA
import Telemetry
import TestSupport
import Testing

/// `Firmware-Protocols/vectors/ota.json`, made by an independent implementation (Python's json
/// and `cryptography`): the gateway's code must agree with it byte for byte.
@Suite struct OTAVectorTests {
    static let document: JSONValue = {
        let data = try! Data(contentsOf: VectorFile.directory.appendingPathComponent("ota.json"))
        return try! JSONParser.parse(Array(data))
    }()

    static var now: Int64 {
        guard case .int(let now)? = document["now"] else { return 0 }
        return now
    }

    static func bytes(_ value: JSONValue?) -> [UInt8] { Hex.decode(value?.string ?? "") ?? [] }

    static var policyKeys: [Ed25519.PublicKey] {
        (document["trusted_keys"]?.arrayValue ?? []).map { try! Ed25519.PublicKey(raw: Hex.decode($0.string!)!) }
    }

    @Test func keysAndKeyIDs() throws {
        for entry in Self.document["keys"]?.arrayValue ?? [] {
            let key = try Ed25519.PrivateKey(seed: Self.bytes(entry["seed"]))
            #expect(Hex.encode(key.publicKey.raw) == entry["public_key"]?.string)
            #expect(key.publicKey.keyID == entry["key_id"]?.string)
        }
    }

    @Test func canonicalBytesAndSignatureMatch() throws {
        let signing = try #require(Self.document["signing"])
        let signed = try #require(signing["signed"])
        let canonical = try signed.canonicalBytes()
        #expect(String(decoding: canonical, as: UTF8.self) == signing["canonical"]?.string)
        #expect(SHA256.hex(canonical) == signing["canonical_sha256"]?.string)
        let operatorKey = try Ed25519.PrivateKey(seed: Self.bytes(Self.document["keys"]?.arrayValue?.first?["seed"]))
        // Ed25519 is deterministic: the same key and bytes give the same signature everywhere.
        #expect(Hex.encode(operatorKey.sign(canonical)) == signing["signature"]?.string)
        let manifest = try ReleaseManifest(json: signed)
        #expect(try manifest.json.canonicalBytes() == canonical)
    }

    @Test func vehicleChecks() throws {
        let vehicle = try #require(Self.document["vehicle"])
        let identity = VehicleIdentity(
            vin: try #require(VIN(vehicle["vin"]?.string ?? "")), hardwareID: vehicle["hardware_id"]?.string ?? "",
            installedCounter: UInt64(vehicle["installed_counter"]?.number ?? 0),
            installedSHA256: vehicle["installed_sha256"]?.string ?? "")
        let checks = Self.document["checks"]?.arrayValue ?? []
        #expect(checks.count >= 10)
        for check in checks {
            let name = check["name"]?.string ?? ""
            let threshold = Int(check["threshold"]?.number ?? 1)
            let policy = TrustPolicy(keys: Self.policyKeys, threshold: threshold)
            var result = "ok"
            do {
                let signed: SignedManifest
                if let text = check["manifest_text"]?.string {
                    signed = try SignedManifest(bytes: Array(text.utf8))
                } else {
                    signed = try SignedManifest(json: try #require(check["manifest"]))
                }
                try VehicleCheck.evaluate(signed, policy: policy, vehicle: identity, nowSeconds: Self.now)
            } catch let error as ManifestError {
                result = error.code
            }
            #expect(result == check["result"]?.string, "\(name)")
        }
    }

    @Test func handBuiltPatchApplies() throws {
        let images = try #require(Self.document["images"])
        let old = Self.bytes(images["old_hex"])
        let new = Self.bytes(images["new_hex"])
        let patch = Self.bytes(images["patch_hex"])
        #expect(try DeltaApplier.apply(patch: patch, old: old, maxNewLength: UInt64(new.count)) == new)
        // And the gateway's encoder's own patch for the same pair applies too.
        #expect(try DeltaApplier.apply(patch: DeltaEncoder.diff(old: old, new: new), old: old) == new)
    }

    @Test func messages() throws {
        let messages = try #require(Self.document["messages"])
        let offerPayload = Array((messages["offer"]?["payload"]?.string ?? "").utf8)
        let offer = try Offer(bytes: offerPayload)
        #expect(offer.campaign == 7)
        #expect(offer.file.kind == .delta)
        #expect(offer.file.blockCount == 1)
        try offer.matchesManifest(installedSHA256: Self.document["vehicle"]?["installed_sha256"]?.string ?? "")
        #expect(throws: ManifestError.self) { try offer.matchesManifest(installedSHA256: String(repeating: "0", count: 64)) }
        #expect(OTATopic.parse(messages["offer"]?["topic"]?.string ?? "")?.kind == .offer)
        for invalid in messages["offers_invalid"]?.arrayValue ?? [] {
            let name = invalid["name"]?.string ?? ""
            let payload = Array((invalid["payload"]?.string ?? "").utf8)
            #expect(throws: OfferError.self, "\(name)") { try Offer(bytes: payload) }
            do {
                _ = try Offer(bytes: payload)
            } catch {
                let campaign = invalid["status"]?["campaign"].flatMap(\.number).map { Int64($0) }
                #expect(error.campaign.map { Int64($0) } == campaign, "\(name)")
                let reason = invalid["status"]?["reason"]?.string
                #expect(invalid["status"] == .null || error.code == reason, "\(name): \(error)")
            }
        }
        for accepted in messages["offers_accepted"]?.arrayValue ?? [] {
            #expect(try Offer(bytes: Array((accepted["payload"]?.string ?? "").utf8)).campaign == 7)
        }

        for get in messages["get"]?.arrayValue ?? [] {
            let payload = Array((get["payload"]?.string ?? "").utf8)
            if get["error"] == .bool(true) {
                #expect(throws: ProtocolError.self, "\(get)") { try BlockRequest(bytes: payload) }
            } else {
                let request = try BlockRequest(bytes: payload)
                #expect(request.blocks.map { Int64($0) } == (get["blocks"]?.arrayValue ?? []).map { Int64($0.number ?? -1) })
                #expect(try BlockRequest(bytes: request.bytes) == request)
            }
        }

        let data = try #require(messages["data"])
        let message = Self.bytes(data["payload_hex"])
        let header = try DataHeader(message: message)
        #expect(header.campaign == 7)
        #expect(header.file == .delta)
        #expect(header.block == 0)
        #expect(Int64(header.payloadLength) == Int64(data["header"]?["length"]?.number ?? -1))
        #expect(header.bytes == Array(message.prefix(16)))
        #expect(SHA256.hex(message.dropFirst(16)) == offer.file.sha256)
        for invalid in messages["data_invalid"]?.arrayValue ?? [] {
            #expect(throws: ProtocolError.self, "\(invalid["name"]?.string ?? "")") {
                try DataHeader(message: Self.bytes(invalid["payload_hex"]))
            }
        }

        for status in messages["status"]?.arrayValue ?? [] {
            let payload = Array((status["payload"]?.string ?? "").utf8)
            if status["error"] == .bool(true) {
                #expect(throws: ProtocolError.self) { try VehicleReport(bytes: payload) }
            } else {
                let report = try VehicleReport(bytes: payload)
                #expect(try VehicleReport(bytes: Array(report.json.serialized().utf8)) == report)
            }
        }
        for command in messages["cmd"]?.arrayValue ?? [] {
            let payload = Array((command["payload"]?.string ?? "").utf8)
            #expect(try OTACommand(bytes: payload).bytes == payload)
        }
    }

    @Test func topicsRefuseWildcardsAndNonVINs() {
        #expect(OTATopic.parse("v1/ota/1TGSV000000000001/get")?.kind == .get)
        for topic in [
            "v1/ota/+/get", "v1/ota/#", "v1/ota/1TGSV00000000000I/get", "v1/ota/1TGSV000000000001/get/x",
            "v1/ota/1TGSV000000000001/", "v1/ota//get", "v2/ota/1TGSV000000000001/get",
        ] {
            #expect(OTATopic.parse(topic) == nil, "\(topic)")
        }
    }

    @Test func manifestFieldValidation() throws {
        let signed = try #require(Self.document["signing"]?["signed"]?.object)
        func refuses(_ change: (inout JSONObject) -> Void) -> Bool {
            var copy = signed
            change(&copy)
            return (try? ReleaseManifest(json: .object(copy))) == nil
        }
        #expect(refuses { $0["version"] = .string("1.1") })
        #expect(refuses { $0["version"] = .string("01.1.0") })
        #expect(refuses { $0["sha256"] = .string("ABC") })
        #expect(refuses { $0["release_counter"] = .int(0) })
        #expect(refuses { $0["length"] = .int(-1) })
        #expect(refuses { $0["targets"] = .object(JSONObject([("vins", .array([]))])) })
        #expect(refuses { $0["targets"] = .object(JSONObject([("vins", .array([.string("not-a-vin")]))])) })
        #expect(refuses { $0["expires"] = .int(1) })
        #expect(refuses { $0["type"] = .string("other") })
        #expect(refuses { $0["name"] = .string("a/b") })
        #expect(!refuses { $0["version"] = .string("2.0.0-rc.1+build.5") })
    }
}
