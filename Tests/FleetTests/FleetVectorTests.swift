import Crypto
import Fleet
import Foundation
import JSON
import OTA
import TestSupport
import Testing

/// `Firmware-Protocols/vectors/fleet.json` (made by an independent Python implementation):
/// every order in delivery order gets the verdict the page promises, and the wire shapes
/// decode to the values listed.
@Suite struct FleetVectorTests {
    static func load() throws -> JSONValue {
        try JSONParser.parse(Array(try Data(contentsOf: VectorFile.directory.appendingPathComponent("fleet.json"))))
    }

    @Test func ordersGetTheirVerdictsInDeliveryOrder() throws {
        let vectors = try Self.load()
        let keys = try (vectors["trusted_keys"]?.arrayValue ?? []).map {
            try Ed25519.PublicKey(raw: Hex.decode($0.string!)!)
        }
        let policy = TrustPolicy(keys: keys, threshold: 1)
        var taken: [String: (sequence: UInt64, digest: String)] = [:]
        let orders = try #require(vectors["orders"]?.arrayValue)
        #expect(orders.count >= 10)
        for (index, order) in orders.enumerated() {
            let expected = try #require(order["expect"]?.string)
            let verdict = Self.verdict(order, index: index, policy: policy, taken: &taken)
            #expect(verdict == expected, "order \(index): \(order["why"]?.string ?? "")")
        }
    }

    /// What a gateway in the state `taken` does with the order: "take", "duplicate" or a refusal code.
    static func verdict(
        _ order: JSONValue, index: Int, policy: TrustPolicy, taken: inout [String: (sequence: UInt64, digest: String)]
    ) -> String {
        let document: FleetDocument
        do { document = try FleetDocument(bytes: Array((order["bytes"]?.string ?? "").utf8)) } catch {
            return error.code
        }
        #expect(String(decoding: document.signedBytes, as: UTF8.self) == order["canonical"]?.string, "order \(index)")
        #expect(document.digest == order["digest"]?.string, "order \(index)")
        do { try policy.verify(document) } catch { return error.code }
        switch FleetOrderRule.judge(document, current: taken[document.campaign]) {
        case .take:
            taken[document.campaign] = (document.sequence, document.digest)
            return "take"
        case .duplicate: return "duplicate"
        case .refuse(let error): return error.code
        }
    }

    @Test func aDocumentSignedHereVerifiesAndRoundTrips() throws {
        let key = try Ed25519.PrivateKey()
        let document = FleetDocument(
            campaign: "c-1", sequence: 4, issued: 1_795_000_000,
            body: .campaign(
                manifest: String(repeating: "ab", count: 32), settings: JSONObject([("retries", .int(1))]),
                vehicleKey: Array(repeating: 7, count: 32))
        ).signed(with: [key])
        let parsed = try FleetDocument(bytes: Array(document.json.serialized().utf8))
        #expect(parsed == document)
        try TrustPolicy(keys: [key.publicKey]).verify(parsed)
        #expect(throws: FleetDocumentError.self) {
            try TrustPolicy(keys: [try Ed25519.PrivateKey().publicKey]).verify(parsed)
        }
    }

    @Test func wireShapesMatchTheVectors() throws {
        let vectors = try Self.load()
        let name = try #require(vectors["vehicle_name"])
        #expect(
            FleetDocument.vehicleName(name["vin"]!.string!, key: Hex.decode(name["vehicle_key"]!.string!)!)
                == name["name"]?.string)
        let chunk = try #require(vectors["chunk"])
        let encoded = try #require(Hex.decode(chunk["encoded_hex"]!.string!))
        let decoded = try BlobChunk(decoding: encoded)
        #expect(Hex.encode(decoded.sha256) == chunk["sha256"]?.string)
        #expect(decoded.offset == 256 && decoded.total == 768)
        #expect(Hex.encode(decoded.bytes) == chunk["bytes_hex"]?.string)
        #expect(decoded.encoded == encoded)
        let fetch = try FetchRequest(bytes: Array(vectors["fetch_request"]!["text"]!.string!.utf8))
        #expect(
            fetch.sha256 == vectors["fetch_request"]?["sha256"]?.string && fetch.offset == 256 && fetch.length == 512)
        #expect(try FetchRequest(bytes: fetch.bytes) == fetch)
        let tally = try TallyMessage(bytes: Array(vectors["tally"]!["text"]!.string!.utf8))
        #expect(tally.campaign == "bus-ecu-1.1.0" && tally.tally.targets == 7 && tally.tally.waves.count == 2)
        #expect(String(decoding: tally.signedBytes, as: UTF8.self) == vectors["tally"]?["canonical"]?.string)
        #expect(try TallyMessage(bytes: tally.bytes) == tally)
        let depot = TrustPolicy(
            keys: try (vectors["depot_keys"]?.arrayValue ?? []).map {
                try Ed25519.PublicKey(raw: Hex.decode($0.string!)!)
            })
        try depot.verify(tally)
        let forged = try TallyMessage(bytes: Array(vectors["tally"]!["forged_text"]!.string!.utf8))
        #expect(
            throws: FleetDocumentError.signature(
                .signatureThreshold(valid: 0, needed: 1, untrusted: [forged.signatures[0].keyID], invalid: []))
        ) {
            try depot.verify(forged)
        }
        var altered = tally
        altered.tally.failures = 3
        #expect(throws: FleetDocumentError.self) { try depot.verify(altered) }
    }

    /// Seeded hostile bytes: every decoder refuses or decodes, never traps.
    @Test func hostileBytesAreRefusedNotFatal() throws {
        var random = SplitMix(seed: 17)
        let vectors = try Self.load()
        let seeds: [[UInt8]] = [
            Array(vectors["orders"]!.arrayValue![0]["bytes"]!.string!.utf8),
            Hex.decode(vectors["chunk"]!["encoded_hex"]!.string!)!,
            Array(vectors["tally"]!["text"]!.string!.utf8), Array(vectors["fetch_request"]!["text"]!.string!.utf8),
        ]
        var refused = 0
        for round in 0..<2_000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<(1 + Int(random.next() % 4)) where !bytes.isEmpty {
                let position = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.remove(at: position)
                default: bytes = Array(bytes[..<position])
                }
            }
            if (try? FleetDocument(bytes: bytes)) == nil { refused += 1 }
            _ = try? BlobChunk(decoding: bytes)
            _ = try? TallyMessage(bytes: bytes)
            _ = try? FetchRequest(bytes: bytes)
        }
        #expect(refused > 1_000)
    }
}
