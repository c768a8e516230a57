import Foundation
import TestSupport
import Testing

@testable import Telemetry

/// The fast path may only ever agree with the general one: for every payload it takes, the
/// general path must give the same `Message`; every payload it leaves goes the general way.
@Suite struct FastDecoderTests {
    let decoder = Decoder()
    let nowMs: Int64 = 1_767_225_600_000

    /// Fast result (nil when it stepped aside) and the general path's result.
    func both(_ topic: String, _ payload: [UInt8]) -> (fast: Message?, general: Result<Message, Rejection>) {
        guard let parsed = try? Topic.parse(topic) else {
            return (nil, decoder.decode(topic: topic, payload: payload, nowMs: nowMs))
        }
        return payload.withUnsafeBufferPointer { buffer in
            let fast = decoder.decodeFast(parsed, payload: buffer, nowMs: nowMs)
            let general = Result { () throws(Rejection) -> Message in
                try decoder.decodeTree(parsed, payload: buffer, nowMs: nowMs)
            }
            return (fast, general)
        }
    }

    /// Seeded payloads of the two fast shapes, valid and mangled: whitespace, key order and
    /// case, number spellings, unknown and repeated members, escapes, truncation.
    @Test(arguments: [31 as UInt64, 32, 33, 34])
    func agreesWithTheGeneralPathOnSeededPayloads(seed: UInt64) {
        var random = SplitMix(seed: seed)
        var taken = 0
        var clean = 0
        let pids = (0..<256).compactMap { code in PIDDefinition.table[code].map { (UInt8(code), $0.byteCount) } }
        func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        func ws() -> String { pick(["", "", "", " ", "\n", "\t ", "\r\n"]) }
        for round in 0..<3_000 {
            let water = round % 3 == 0
            var members: [String] = []
            let ts = nowMs - Int64(random.next() % 100_000)
            members.append(
                "\"ts\":\(ws())\(pick(["\(ts)", "\(ts)", "\(ts)", "\(ts).0", "1e12", "\"\(ts)\"", "-\(ts)"]))")
            members.append("\"seq\":\(pick(["\(random.next() % 1000)", "7", "-1", "4294967296", "1.5", "null"]))")
            if water {
                let level = Double(Int(random.next() % 20_000) - 200) / pick([1.0, 10.0, 100.0])
                members.append("\"level_cm\":\(pick(["\(level)", "\(Int(level))", "\(level)e0", "true", "\"1\""]))")
                if random.next() % 2 == 0 { members.append("\"battery_v\":\(pick(["3.9", "61", "0", "-0"]))") }
                if random.next() % 3 == 0 { members.append("\"rain_mm_h\":\(pick(["2.5", "1001", "0.0"]))") }
            } else {
                var entries: [String] = []
                for _ in 0..<(1 + Int(random.next() % 18)) {
                    let (code, bytes) = pick(pids)
                    var key = String(format: pick(["%02X", "%02x"]), code)
                    if random.next() % 40 == 0 { key = pick(["ZZ", "0C0", "", "FF"]) }
                    var hex = (0..<bytes).map { _ in String(format: "%02X", random.next() % 256) }.joined()
                    if random.next() % 40 == 0 { hex = pick(["", "1", "GG", hex + "00", "\\u0030"]) }
                    entries.append("\"\(key)\":\(ws())\"\(hex)\"")
                }
                members.append("\"pids\":\(ws()){\(entries.joined(separator: ",\(ws())"))}")
            }
            if random.next() % 15 == 0 {
                members.append(pick(["\"extra\":1", "\"ts\":1", "\"\\u0074s\":1", "\"pids\":{}"]))
            }
            members.shuffle(using: &random)
            var text = "\(ws()){\(ws())" + members.joined(separator: "\(ws()),\(ws())") + "\(ws())}\(ws())"
            if random.next() % 30 == 0 { text = String(text.dropLast(Int(random.next() % 5) + 1)) }
            if random.next() % 60 == 0 { text += pick(["x", "}", "{}"]) }
            let topic = water ? "v1/water/drain-\(round % 7)/level" : "v1/obd/1HGCM82633A00435\(round % 10)/pids"
            let (fast, general) = both(topic, Array(text.utf8))
            if case .success(.readings(_, _, _, _, let rejections)) = general, rejections.isEmpty {
                clean += 1
            }
            if let fast {
                taken += 1
                if case .success(let message) = general {
                    #expect(message == fast, "\(text)")
                } else {
                    Issue.record("fast path took a payload the general path refuses: \(text) (\(general))")
                }
            }
        }
        // Not a test that cannot fail: the cleanly valid payloads go the fast way, all but
        // those with a member the fast shapes do not have.
        #expect(clean > 100)
        #expect(Double(taken) > 0.9 * Double(clean), "taken \(taken) of \(clean) cleanly valid")
    }

    /// The firmware vectors and the fuzz corpus: every input the fast path takes agrees.
    @Test func agreesOnTheVectorsAndTheFuzzCorpus() throws {
        var inputs: [(String, [UInt8])] = []
        for file in VectorFile.all {
            for vector in try VectorFile.load(file).vectors {
                guard let topic = vector["topic"]?.string else { continue }
                inputs.append((topic, payloadBytes(vector)))
            }
        }
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../FuzzCorpus/decoder").standardizedFileURL
        for name in try FileManager.default.contentsOfDirectory(atPath: corpus.path) {
            let bytes = Array(try Data(contentsOf: corpus.appendingPathComponent(name)))
            let newline = bytes.firstIndex(of: 10) ?? bytes.count
            inputs.append(
                (String(decoding: bytes[0..<newline], as: UTF8.self), Array(bytes[min(newline + 1, bytes.count)...])))
        }
        var taken = 0
        for (topic, payload) in inputs {
            let (fast, general) = both(topic, payload)
            guard let fast else { continue }
            taken += 1
            #expect(general == .success(fast), "\(topic) \(String(decoding: payload, as: UTF8.self))")
        }
        #expect(taken >= 10, "the vectors' valid PID and level messages go the fast way (\(taken) of \(inputs.count))")
    }
}
