import Telemetry
import Testing

extension SequenceTracker {
    /// Every message with the same time: only the numbers decide.
    mutating func observe(_ seq: UInt32) -> Observation { observe(seq, ts: 1_000) }
}

@Suite struct SequenceTrackerTests {
    /// A unit that reboots and counts from 1 again: its new messages carry newer times, so they
    /// are a restart, not replays; a true replay (old time) is still a duplicate.
    @Test func lowerNumberWithNewerTimeIsARestart() {
        var tracker = SequenceTracker()
        for seq in UInt32(1)...300 { _ = tracker.observe(seq, ts: 10_000 + Int64(seq)) }
        #expect(tracker.observe(120, ts: 10_120) == .duplicate)
        #expect(tracker.observe(1, ts: 20_000) == .reset)
        #expect(tracker.resets == 1)
        #expect(tracker.observe(2, ts: 20_001) == .inOrder)
        #expect(tracker.observe(2, ts: 20_001) == .duplicate)
        #expect(tracker.gaps == 0)
    }

    /// The bytes the store writes are the window's words, each little-endian, lowest first:
    /// the layout files already hold, which a restart reads back.
    @Test func windowBytesAreTheWordsLittleEndian() {
        var tracker = SequenceTracker()
        for seq in UInt32(1)...700 where seq % 3 != 0 || seq > 650 { _ = tracker.observe(seq) }
        let expected = tracker.window.flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> ($0 * 8)) } }
        let bytes = tracker.withWindowBytes { Array($0) }
        #expect(bytes == expected)
        #expect(bytes.count == SequenceTracker.windowWords * 8)
        #expect(expected.contains { $0 != 0 })
    }

    @Test func lateMessageWithItsOldTimeFillsTheGap() {
        var tracker = SequenceTracker()
        _ = tracker.observe(1, ts: 100)
        _ = tracker.observe(3, ts: 300)
        #expect(tracker.observe(2, ts: 200) == .late)
        #expect(tracker.gaps == 0)
    }

    @Test func inOrderStreamHasNoGapsOrDuplicates() {
        var tracker = SequenceTracker()
        #expect(tracker.observe(10) == .first)
        for seq in UInt32(11)...1000 { #expect(tracker.observe(seq) == .inOrder) }
        #expect(tracker.gaps == 0)
        #expect(tracker.duplicates == 0)
    }

    @Test func gapsAreCountedAndTakenBackWhenFilled() {
        var tracker = SequenceTracker()
        _ = tracker.observe(1)
        #expect(tracker.observe(5) == .afterGap(missing: 3))
        #expect(tracker.gaps == 3)
        #expect(tracker.observe(3) == .late)
        #expect(tracker.gaps == 2)
        #expect(tracker.observe(3) == .duplicate)
        #expect(tracker.duplicates == 1)
        #expect(tracker.gaps == 2)
    }

    @Test func duplicatesAcrossWordBoundariesAreRecognised() {
        var tracker = SequenceTracker()
        for seq in UInt32(0)..<200 { _ = tracker.observe(seq) }
        for seq in UInt32(0)..<200 { #expect(tracker.observe(seq) == .duplicate) }
        #expect(tracker.duplicates == 200)
        _ = tracker.observe(1000)
        #expect(tracker.observe(100) == .duplicate)
        #expect(tracker.observe(500) == .late)
    }

    @Test func farBelowTheWindowIsAReset() {
        var tracker = SequenceTracker()
        _ = tracker.observe(100_000)
        #expect(tracker.observe(0) == .reset)
        #expect(tracker.resets == 1)
        #expect(tracker.observe(1) == .inOrder)
        #expect(tracker.observe(0) == .duplicate)
    }

    @Test func restartAcceptsLowNumbersAgain() {
        var tracker = SequenceTracker()
        for seq in UInt32(1)...500 { _ = tracker.observe(seq) }
        #expect(tracker.observe(3) == .duplicate)
        tracker.restart()
        #expect(tracker.resets == 1)
        #expect(tracker.observe(1) == .first)
        #expect(tracker.observe(2) == .inOrder)
    }

    @Test func jumpLargerThanTheWindowClearsIt() {
        var tracker = SequenceTracker()
        _ = tracker.observe(1)
        #expect(tracker.observe(5000) == .afterGap(missing: 4998))
        #expect(tracker.observe(5000 - SequenceTracker.windowSize + 1) == .late)
    }

    @Test func roundTripsThroughItsStoredForm() {
        var tracker = SequenceTracker()
        for seq: UInt32 in [1, 2, 5, 9, 70, 130] { _ = tracker.observe(seq) }
        var restored = SequenceTracker(
            highest: tracker.highest, window: tracker.window, gaps: tracker.gaps, duplicates: tracker.duplicates,
            resets: tracker.resets, latestTs: tracker.latestTs)
        #expect(restored == tracker)
        #expect(restored.observe(70) == .duplicate)
        #expect(restored.observe(69) == .late)
    }
}

@Suite struct TopicTests {
    @Test func parsesEachFamily() throws {
        #expect(try Topic.parse("v1/obd/1HGCM82633A004352/pids") == .obdPIDs(VIN("1HGCM82633A004352")!))
        #expect(try Topic.parse("v1/obd/1HGCM82633A004352/dtc") == .obdDTC(VIN("1HGCM82633A004352")!))
        #expect(try Topic.parse("v1/obd/1HGCM82633A004352/hello") == .obdHello(VIN("1HGCM82633A004352")!))
        #expect(try Topic.parse("v1/water/drain-7/level") == .waterLevel(SensorID("drain-7")!))
    }

    @Test(arguments: [
        "", "v1", "v2/obd/1HGCM82633A004352/pids", "v1/bus/x/y", "v1/water/a/level/b", "/v1/water/a/level",
    ])
    func refusesOtherTopics(topic: String) {
        #expect(throws: Rejection.self) { try Topic.parse(topic) }
    }

    @Test func vinRules() {
        #expect(VIN("1HGCM82633A004352") != nil)
        #expect(VIN("1HGCM82633A00435") == nil)
        #expect(VIN("1HGCM82633A0043521") == nil)
        for letter in ["I", "O", "Q"] { #expect(VIN("1HGCM82633A00435" + letter) == nil) }
        #expect(VIN("1HGCM82633A00435\u{0}") == nil)
        #expect(VIN("1HGCM82633A00435é") == nil)
    }

    @Test func sensorIDRules() {
        #expect(SensorID("a") != nil)
        #expect(SensorID(String(repeating: "a", count: 64)) != nil)
        #expect(SensorID(String(repeating: "a", count: 65)) == nil)
        #expect(SensorID("") == nil)
        for bad in ["a/b", "a+b", "a#", "a b", "ü", "a\n"] { #expect(SensorID(bad) == nil) }
    }
}
