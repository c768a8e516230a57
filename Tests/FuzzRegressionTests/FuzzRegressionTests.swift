import Foundation
import FuzzTargets
import Testing

/// Every input kept under `Tests/FuzzCorpus/{target}/` — the seeds, and each input that once
/// crashed a target — goes through the target again on every test run. `.ci/fuzz.sh` adds a
/// crashing input here when it finds one; the fix makes this test pass.
@Suite struct FuzzRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus")

    @Test(arguments: FuzzTarget.allCases)
    func keptInputsStillPass(_ target: FuzzTarget) throws {
        let directory = Self.corpus.appendingPathComponent(target.rawValue)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(!names.isEmpty, "no inputs under \(directory.path)")
        for name in names {
            let bytes = try Array(Data(contentsOf: directory.appendingPathComponent(name)))
            bytes.withUnsafeBytes { target.run($0) }
        }
    }
}
