import Foundation
import JSON
import Telemetry
import TestSupport
import Testing

func decode(_ vector: JSONValue, nowMs: Int64) -> Result<Message, Rejection> {
    Decoder().decode(topic: vector["topic"]!.string!, payload: payloadBytes(vector), nowMs: nowMs)
}

/// The firmware test vectors in `Firmware-Protocols/vectors/`, run through the real decoder.
/// Firmware teams run the same files against their encoders; if these pass, both sides agree.
@Suite struct FirmwareVectorTests {
    static let files = VectorFile.all

    @Test(arguments: files)
    func vectorsDecodeAsDocumented(file: String) throws {
        let vectors = try VectorFile.load(file)
        #expect(!vectors.vectors.isEmpty)
        for vector in vectors.vectors {
            let name = vector["name"]?.string ?? "?"
            let expect = try #require(vector["expect"]?.object, "\(file): \(name) has no expect")
            let result = decode(vector, nowMs: vectors.nowMs)
            if let reason = expect["reject"]?.string {
                guard case .failure(let rejection) = result else {
                    Issue.record("\(file): \(name): expected reject \(reason), got \(result)")
                    continue
                }
                #expect(rejection.reason.rawValue == reason, "\(file): \(name): \(rejection)")
                #expect(!rejection.detail.isEmpty)
                continue
            }
            guard case .success(let message) = result else {
                Issue.record("\(file): \(name): expected success, got \(result)")
                continue
            }
            switch message {
            case .readings(_, let ts, _, let readings, let entryRejections):
                let expected = try #require(expect["readings"]?.object, "\(file): \(name)")
                #expect(ts > 0)
                #expect(readings.count == expected.members.count, "\(file): \(name): \(readings)")
                for (signal, value) in expected.members {
                    let got = readings.first { $0.signal.name == signal }
                    let want = try #require(value.number)
                    #expect(
                        got.map { abs($0.value - want) <= 1e-6 * max(1, abs(want)) } == true,
                        "\(file): \(name): \(signal) expected \(want), got \(String(describing: got?.value))")
                }
                var expectedEntryRejects: [String] = []
                if case .array(let items) = expect["entry_rejects"] {
                    expectedEntryRejects = items.compactMap(\.string)
                }
                #expect(entryRejections.map(\.reason.rawValue) == expectedEntryRejects, "\(file): \(name)")
            case .troubleCodes(_, _, _, let codes):
                guard case .array(let expected) = expect["codes"] else {
                    Issue.record("\(file): \(name): unexpected trouble codes \(codes)")
                    continue
                }
                #expect(codes.map(\.description) == expected.compactMap(\.string), "\(file): \(name)")
            case .hello(_, let firmware, let hardware, let model, let nextSeq):
                let expected = try #require(expect["hello"]?.object, "\(file): \(name)")
                let expectedSeq: Int64? = if case .int(let seq) = expected["seq"] { seq } else { nil }
                #expect(nextSeq.map { Int64($0) } == expectedSeq, "\(file): \(name)")
                #expect(firmware == expected["fw"]?.string)
                #expect(hardware == expected["hw"]?.string)
                #expect(model == expected["model"]?.string)
            }
        }
    }

    @Test func everyRejectReasonHasAVector() throws {
        var seen = Set<String>()
        for file in Self.files {
            for vector in try VectorFile.load(file).vectors {
                if let reason = vector["expect"]?["reject"]?.string { seen.insert(reason) }
                if case .array(let entries) = vector["expect"]?["entry_rejects"] {
                    for entry in entries { if let reason = entry.string { seen.insert(reason) } }
                }
            }
        }
        // payload_too_large needs a 16 KiB payload: covered by oversizedPayloadIsRejected below.
        // device_limit and rate_limited depend on the gateway's state: covered by IngestTests and FaultTests.
        let expected = Set(RejectReason.allCases.map(\.rawValue)).subtracting(["payload_too_large", "device_limit", "rate_limited"])
        #expect(expected.subtracting(seen).isEmpty, "reasons without a vector: \(expected.subtracting(seen))")
    }

    @Test func everyDocumentedPIDHasAVector() throws {
        var seen = Set<String>()
        for vector in try VectorFile.load("obd-pids.json").vectors {
            if let readings = vector["expect"]?["readings"]?.object { seen.formUnion(readings.keys) }
        }
        let decoded = Set(PIDDefinition.dictionary.values.flatMap { $0.signals.map(\.name) })
        #expect(decoded.subtracting(seen).isEmpty)
        #expect(PIDDefinition.dictionary.count == 17)
        #expect(PIDDefinition.table.compactMap { $0 }.count == 17)
    }

    @Test func oversizedPayloadIsRejected() {
        let padding = String(repeating: " ", count: 16 * 1024)
        let payload = Array("{\"ts\":1767225599000,\"seq\":1,\"level_cm\":1}\(padding)".utf8)
        let result = Decoder().decode(topic: "v1/water/drain-1/level", payload: payload, nowMs: 1_767_225_600_000)
        guard case .failure(let rejection) = result else {
            Issue.record("expected a reject")
            return
        }
        #expect(rejection.reason == .payloadTooLarge)
    }

    @Test func payloadAtTheLimitIsAccepted() {
        let body = "{\"ts\":1767225599000,\"seq\":1,\"level_cm\":1}"
        let payload = Array((body + String(repeating: " ", count: 16 * 1024 - body.utf8.count)).utf8)
        #expect(payload.count == 16 * 1024)
        let result = Decoder().decode(topic: "v1/water/drain-1/level", payload: payload, nowMs: 1_767_225_600_000)
        #expect((try? result.get()) != nil)
    }
}
