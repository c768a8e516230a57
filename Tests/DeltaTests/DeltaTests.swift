import Foundation
import TestSupport
import Testing

@testable import Delta

@Suite struct DeltaTests {
    func roundTrip(_ old: [UInt8], _ new: [UInt8]) throws -> [UInt8] {
        let patch = DeltaEncoder.diff(old: old, new: new)
        let rebuilt = try DeltaApplier.apply(patch: patch, old: old, maxNewLength: UInt64(new.count))
        #expect(rebuilt == new)
        return patch
    }

    @Test func suffixArrayIsSorted() {
        var random = SplitMix(state: 7)
        for size in [0, 1, 2, 17, 300, 5_000] {
            let alphabet = UInt8.random(in: 1...255, using: &random)
            let text = (0..<size).map { _ in UInt8.random(in: 0...alphabet, using: &random) }
            let suffixes = text.withUnsafeBufferPointer { SuffixArray.build($0) }
            #expect(suffixes.count == size + 1)
            #expect(Set(suffixes) == Set(0...size))
            for index in 1..<suffixes.count {
                #expect(text[suffixes[index - 1]...].lexicographicallyPrecedes(text[suffixes[index]...]))
            }
        }
    }

    @Test func edgeCases() throws {
        _ = try roundTrip([], [])
        _ = try roundTrip([], [1, 2, 3])
        _ = try roundTrip([1, 2, 3], [])
        _ = try roundTrip([1, 2, 3], [1, 2, 3])
        _ = try roundTrip([UInt8](repeating: 0, count: 1000), [UInt8](repeating: 0, count: 999) + [1])
        _ = try roundTrip([UInt8](repeating: 7, count: 5000), [UInt8](repeating: 7, count: 10_000))
    }

    /// The property: for any old and new image, applying the patch gives the new image exactly.
    /// New images are old ones edited the way builds differ: bytes changed, ranges inserted,
    /// deleted, moved, and shifted values (addresses) sprinkled through.
    @Test(arguments: 0..<60)
    func patchReproducesTheNewImage(seed: Int) throws {
        var random = SplitMix(state: UInt64(seed) &* 0x1234_5678 &+ 1)
        let size = Int.random(in: 0...40_000, using: &random)
        let lowEntropy = Bool.random(using: &random)
        var old = (0..<size).map { _ in UInt8.random(in: 0...(lowEntropy ? 3 : 255), using: &random) }
        if seed % 5 == 0 { old = old.map { $0 & 0xF0 } }
        var new = old
        for _ in 0..<Int.random(in: 0...12, using: &random) {
            let position = new.isEmpty ? 0 : Int.random(in: 0..<new.count, using: &random)
            let length = Int.random(in: 0...min(2_000, max(0, new.count - position)), using: &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0:
                for index in position..<(position + length) where Bool.random(using: &random) {
                    new[index] = UInt8.random(in: 0...255, using: &random)
                }
            case 1: new.insert(contentsOf: (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }, at: position)
            case 2: new.removeSubrange(position..<(position + length))
            case 3:
                let moved = Array(new[position..<(position + length)])
                new.removeSubrange(position..<(position + length))
                new.insert(contentsOf: moved, at: new.isEmpty ? 0 : Int.random(in: 0...new.count, using: &random))
            default:
                for index in stride(from: position, to: position + length, by: 16) { new[index] &+= 4 }
            }
        }
        if seed % 7 == 3 { new = (0..<Int.random(in: 0...5_000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) } }
        _ = try roundTrip(old, new)
    }

    /// Applying in pieces of any size gives the same bytes as applying at once.
    @Test func streamingInArbitraryPieces() throws {
        var random = SplitMix(state: 99)
        let old = (0..<50_000).map { _ in UInt8.random(in: 0...255, using: &random) }
        var new = old
        new.replaceSubrange(1000..<1010, with: [UInt8](repeating: 9, count: 300))
        new.append(contentsOf: old[0..<70_000 - old.count + 20_000])
        let patch = DeltaEncoder.diff(old: old, new: new)
        for pieceSize in [1, 3, 64, 4096] {
            var applier = DeltaApplier(maxNewLength: UInt64(new.count))
            var output: [UInt8] = []
            var offset = 0
            while offset < patch.count {
                let end = min(patch.count, offset + pieceSize)
                try patch[offset..<end].withUnsafeBytes { piece in
                    try applier.consume(piece, old: old) { output.append(contentsOf: $0) }
                }
                offset = end
            }
            try applier.finish()
            #expect(output == new)
        }
    }

    /// Two builds of a real program that differ by a small change (one constant and one added
    /// function, which moves every address after it): the patch is a small part of the image.
    @Test func twoBuildsOfARealExecutable() throws {
        guard let compiler = ["/opt/swift/usr/bin/clang", "/usr/bin/cc", "/usr/bin/gcc"].first(where: {
            FileManager.default.isExecutableFile(atPath: $0)
        }) else {
            Issue.record("no C compiler found to build the two executables")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("delta-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func build(_ name: String, change: Bool) throws -> [UInt8] {
            var source = "#include <stdio.h>\n#include <string.h>\n"
            for index in 0..<400 {
                if change && index == 200 { source += "int added(int x) { return x * 7 + 3; }\n" }
                let constant = change && index == 50 ? 4242 : index * 13
                source +=
                    "int f\(index)(int x) { static const char *s = \"function \(index)\"; return (int)strlen(s) + x * \(constant) + (x >> \(index % 7)); }\n"
            }
            source += "int main(int argc, char **argv) { int t = 0;\n"
            for index in 0..<400 { source += "t += f\(index)(argc);\n" }
            source += "printf(\"%d\\n\", t); return 0; }\n"
            let sourceURL = directory.appendingPathComponent("\(name).c")
            try source.write(to: sourceURL, atomically: true, encoding: .utf8)
            let output = directory.appendingPathComponent(name)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: compiler)
            process.arguments = ["-O2", "-o", output.path, sourceURL.path]
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            return Array(try Data(contentsOf: output))
        }
        let old = try build("v1", change: false)
        let new = try build("v2", change: true)
        #expect(old != new)
        let patch = try roundTrip(old, new)
        #expect(patch.count * 5 < new.count, "patch \(patch.count) bytes for an image of \(new.count)")
    }

    /// Hostile patches fail with a reason; none reads outside the old image or writes past
    /// the signed length.
    @Test func hostilePatchesAreRefused() throws {
        let old: [UInt8] = Array(repeating: 1, count: 100)
        func apply(_ patch: [UInt8], limit: UInt64 = 1000) -> DeltaError? {
            do {
                _ = try DeltaApplier.apply(patch: patch, old: old, maxNewLength: limit)
                return nil
            } catch let error as DeltaError {
                return error
            } catch {
                return nil
            }
        }
        func header(old: UInt64 = 100, new: UInt64) -> [UInt8] {
            var bytes = DeltaFormat.magic
            DeltaEncoder.appendUInt64LE(old, to: &bytes)
            DeltaEncoder.appendUInt64LE(new, to: &bytes)
            return bytes
        }
        #expect(apply(Array("NOTAPATCH".utf8) + [UInt8](repeating: 0, count: 20)) == .badMagic)
        #expect(apply(header(old: 99, new: 1)) == .oldLengthMismatch(expected: 99, actual: 100))
        #expect(apply(header(new: 5000)) == .newLengthTooLarge(5000, limit: 1000))
        #expect(apply(header(new: 10) + [11, 0, 0]) == .recordOverflowsImage(patchOffset: 24))
        #expect(apply(header(new: 10) + [0, 10, 0] + [UInt8](repeating: 0, count: 10) + [0]) == .trailingBytes(patchOffset: 37))
        // Seek far before the start, then add: out of range.
        #expect(apply(header(new: 10) + [0, 1, 0x7F, 5] + [5, 0, 0, 5, 0]) == .oldReadOutOfRange(position: -64, length: 5, patchOffset: 28))
        #expect(apply(header(new: 10) + [2, 0, 0, 5, 0]) == .runOverflowsRecord(patchOffset: 27))
        #expect(apply(header(new: 10) + [UInt8](repeating: 0xFF, count: 11)) == .malformedVarint(patchOffset: 33))
        #expect(apply(header(new: 10) + [0, 4, 0, 1, 2]) == .truncated(written: 2, expected: 10))
        // Random garbage after a valid header never crashes.
        var random = SplitMix(state: 3)
        for _ in 0..<2_000 {
            let tail = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = apply(header(new: UInt64.random(in: 0...200, using: &random)) + tail)
        }
    }
}
