import Foundation
import JSON
import SQLite
import Telemetry
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A distinct valid VIN per index, so each vector lands on its own device.
func testVIN(_ index: Int) -> String {
    let digits = String(index)
    return "5YJSA1E2" + String(repeating: "0", count: 9 - digits.count) + digits
}

/// End to end: a real mosquitto, the real gatewayd binary, a real SQLite file.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct IngestTests {
    /// Every firmware vector goes through the broker and gatewayd: each valid reading must be in
    /// `readings_v` exactly once with its value, each invalid message in `rejects_v` with its reason.
    @Test func everyVectorEndsUpStoredOrRejected() async throws {
        let live = try LiveGateway()
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)

        struct Expected {
            var device: String
            var readings: [(String, Double)]
            var codes: [String]
        }
        var expectedStored: [Expected] = []
        var expectedRejects: [(topic: String, reason: String)] = []
        var index = 0
        for file in VectorFile.all {
            // A vector that depends on the clock is checked in-process with its own now_ms.
            for vector in try VectorFile.load(file).vectors where vector["clock_dependent"] == nil {
                index += 1
                var topic = vector["topic"]!.string!
                var device = ""
                if topic.hasPrefix("v1/obd/1HGCM82633A004352/") {
                    device = testVIN(index)
                    topic = topic.replacingOccurrences(of: "1HGCM82633A004352", with: device)
                } else if topic == "v1/water/river-klang-07/level" {
                    device = "it-sensor-\(index)"
                    topic = "v1/water/\(device)/level"
                }
                let expect = vector["expect"]!
                try publisher.sendBlocking(topic, bytes: payloadBytes(vector))
                if let reason = expect["reject"]?.string {
                    expectedRejects.append((topic, reason))
                    continue
                }
                if case .array(let entries) = expect["entry_rejects"] {
                    for entry in entries { expectedRejects.append((topic, entry.string!)) }
                }
                var codes: [String] = []
                if case .array(let list) = expect["codes"] { codes = list.compactMap(\.string) }
                let readings = expect["readings"]?.object?.members.map { ($0.key, $0.value.number!) } ?? []
                expectedStored.append(Expected(device: device, readings: readings, codes: codes))
            }
        }
        // Far in the future by the gateway's own clock.
        let futureTopic = "v1/water/it-future/level"
        let future = Int64(Date().timeIntervalSince1970 * 1000) + 2 * 86_400_000
        try publisher.sendBlocking(futureTopic, bytes: Array(#"{"ts":\#(future),"seq":1,"level_cm":1}"#.utf8))
        expectedRejects.append((futureTopic, "bad_ts"))
        // Oversized: refused by size before any parsing.
        let oversizedTopic = "v1/water/it-oversized/level"
        try publisher.sendBlocking(oversizedTopic, bytes: Array(repeating: UInt8(ascii: "x"), count: 20_000))
        expectedRejects.append((oversizedTopic, "payload_too_large"))

        let totalReadings = expectedStored.reduce(0) { $0 + $1.readings.count }
        try waitFor(
            "all readings and rejects (\(totalReadings), \(expectedRejects.count)); log: \(gateway.scratch.path)"
        ) {
            try gateway.count("SELECT count(*) FROM readings_v") >= Int64(totalReadings)
                && gateway.count("SELECT count(*) FROM rejects_v") >= Int64(expectedRejects.count)
        }
        let db = try gateway.database()
        #expect(try db.scalarInt("SELECT count(*) FROM readings_v") == Int64(totalReadings))
        let select = try db.statement("SELECT value FROM readings_v WHERE device = ? AND signal = ?")
        for expected in expectedStored where !expected.device.isEmpty {
            for (signal, value) in expected.readings {
                select.reset()
                select.bind(arguments: expected.device, signal)
                var values: [Double] = []
                while try select.step() { values.append(select.double(0)) }
                #expect(values.count == 1, "\(expected.device) \(signal): \(values)")
                #expect(values.first.map { abs($0 - value) <= 1e-6 * max(1, abs(value)) } == true)
            }
        }
        let codes = try db.statement("SELECT detail FROM events_v WHERE device = ? AND type = 'dtc' ORDER BY rowid")
        for expected in expectedStored where !expected.codes.isEmpty {
            codes.reset()
            codes.bind(arguments: expected.device)
            var got: [String] = []
            while try codes.step() { got.append(codes.text(0)!) }
            #expect(got.sorted() == expected.codes.sorted(), "\(expected.device)")
        }
        let reasons = try db.statement("SELECT reason FROM rejects_v WHERE topic = ?")
        for (topic, reason) in expectedRejects {
            reasons.reset()
            reasons.bind(arguments: topic)
            var got: [String] = []
            while try reasons.step() { got.append(reasons.text(0)!) }
            #expect(got.contains(reason), "\(topic): expected \(reason), got \(got)")
        }
        #expect(try db.scalarInt("SELECT count(*) FROM rejects_v") == Int64(expectedRejects.count))
        #expect(try db.scalarText("SELECT fw FROM devices_v WHERE fw IS NOT NULL LIMIT 1") != nil)
        #expect(gateway.child?.isRunning == true)
        #expect(gateway.stop() == 0)
        #expect(gateway.log.contains("event=message_rejected"))
    }

    @Test func duplicatesAreStoredOnceAndGapsCounted() async throws {
        let live = try LiveGateway()
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let topic = "v1/water/dup-sensor/level"
        for seq in [1, 2, 2, 2, 3, 6, 3] {
            try await publisher.send(topic, #"{"ts":\#(now),"seq":\#(seq),"level_cm":\#(seq).5}"#)
        }
        try waitFor("device row with all messages") {
            try gateway.count("SELECT duplicates FROM devices_v WHERE device = 'dup-sensor'") == 3
        }
        #expect(try gateway.count("SELECT count(*) FROM readings_v WHERE device = 'dup-sensor'") == 4)
        #expect(try gateway.count("SELECT seq_gaps FROM devices_v WHERE device = 'dup-sensor'") == 2)
        #expect(try gateway.count("SELECT count(DISTINCT seq) FROM readings_v WHERE device = 'dup-sensor'") == 4)
    }

    /// The broker keeps gatewayd's persistent session: QoS 1 messages published while it is
    /// down are delivered when it comes back.
    @Test func messagesPublishedWhileTheGatewayIsDownArriveAfterRestart() async throws {
        let live = try LiveGateway()
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let vin = testVIN(777)
        try await publisher.send("v1/obd/\(vin)/pids", #"{"ts":\#(now),"seq":0,"pids":{"0D":"3C"}}"#)
        try waitFor("first reading") { try gateway.count("SELECT count(*) FROM readings_v") == 1 }
        #expect(gateway.stop() == 0)
        for seq in 1...300 {
            try await publisher.send(
                "v1/obd/\(vin)/pids", #"{"ts":\#(now + Int64(seq)),"seq":\#(seq),"pids":{"0D":"3C","0C":"1AF8"}}"#)
        }
        try gateway.start()
        try waitFor("all 601 readings after restart") {
            try gateway.count("SELECT count(*) FROM readings_v") == 601
        }
        #expect(try gateway.count("SELECT seq_gaps FROM devices_v") == 0)
        #expect(try gateway.count("SELECT duplicates FROM devices_v") == 0)
    }

    /// SIGTERM in the middle of a stream: gatewayd stops acknowledging, commits what it has
    /// acknowledged, exits 0; the rest stays queued at the broker and arrives after a restart.
    /// Nothing is lost and nothing stored twice.
    @Test func sigtermLosesNothingAcknowledged() async throws {
        let live = try LiveGateway()
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let total = 20_000
        let gatewayPID = gateway.child!.pid
        // Pipelined, so the signal lands while messages are in flight at every stage.
        try publisher.stream(
            count: total,
            before: { index in if index == total / 2 { kill(gatewayPID, SIGTERM) } }
        ) { seq in
            ("v1/water/term-\(seq % 5)/level", #"{"ts":\#(now + Int64(seq)),"seq":\#(seq / 5),"level_cm":1.25}"#)
        }
        let child = try #require(gateway.child)
        try waitFor("gatewayd to exit") { !child.isRunning }
        #expect(child.terminationStatus == 0)
        #expect(child.log.contains("event=gateway_stopped"))
        let before = try gateway.count("SELECT count(*) FROM readings_v")
        #expect(before > 0)
        try gateway.start()
        try waitFor("every message after restart") {
            try gateway.count("SELECT count(*) FROM readings_v") == Int64(total)
        }
        #expect(try gateway.count("SELECT sum(seq_gaps) FROM devices_v") == 0)
        // The broker may redeliver messages whose PUBACK was still queued when gatewayd closed
        // the connection; they are counted as duplicates and never stored twice.
        #expect(
            try gateway.count(
                "SELECT count(*) FROM (SELECT device, seq FROM readings_v GROUP BY 1, 2 HAVING count(*) > 1)") == 0)
    }

    /// kill -9 mid-stream: the file opens cleanly, everything committed before the kill is still
    /// there, and what was acknowledged but not yet committed is exactly what the per-device
    /// seq gaps report: the loss is bounded and visible, never silent.
    @Test func killNineLossIsVisibleAsSeqGaps() throws {
        let live = try LiveGateway()
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let total = 20_000
        let gatewayPID = gateway.child!.pid
        try publisher.stream(
            count: total, before: { index in if index == total / 2 { kill(gatewayPID, SIGKILL) } }
        ) { index in
            ("v1/water/k9-\(index % 4)/level", #"{"ts":\#(now + Int64(index)),"seq":\#(index / 4),"level_cm":2.5}"#)
        }
        let child = try #require(gateway.child)
        try waitFor("gatewayd to die") { !child.isRunning }
        let committedBeforeKill = try gateway.count("SELECT count(*) FROM readings_v")
        #expect(try gateway.database().scalarText("PRAGMA integrity_check") == "ok")
        try gateway.start()
        try waitFor("the rest of the stream") {
            try gateway.count("SELECT count(*) FROM readings_v") + gateway.count("SELECT sum(seq_gaps) FROM devices_v")
                == Int64(total)
        }
        let stored = try gateway.count("SELECT count(*) FROM readings_v")
        let gaps = try gateway.count("SELECT sum(seq_gaps) FROM devices_v")
        #expect(stored >= committedBeforeKill)
        #expect(gaps <= 8_192 + 1_000, "lost \(gaps): more than the inbound queue and a flush window")
        #expect(
            try gateway.count(
                "SELECT count(*) FROM (SELECT device, seq FROM readings_v GROUP BY 1, 2 HAVING count(*) > 1)") == 0)
        #expect(try gateway.database().scalarText("PRAGMA integrity_check") == "ok")
    }

    /// A unit that reboots starts its seq again; its hello says so, and its messages are stored
    /// instead of being dropped as replays.
    @Test func helloWithALowerSeqRestartsLossAccounting() async throws {
        let live = try LiveGateway()
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let vin = testVIN(4242)
        try await publisher.send("v1/obd/\(vin)/hello", #"{"seq":1,"fw":"1.0.0","hw":"obd-x1"}"#)
        for seq in 1...50 {
            try await publisher.send(
                "v1/obd/\(vin)/pids", #"{"ts":\#(now + Int64(seq)),"seq":\#(seq),"pids":{"0D":"3C"}}"#)
        }
        try await publisher.send("v1/obd/\(vin)/hello", #"{"seq":1,"fw":"1.0.1","hw":"obd-x1"}"#)
        for seq in 1...20 {
            try await publisher.send(
                "v1/obd/\(vin)/pids", #"{"ts":\#(now + 100 + Int64(seq)),"seq":\#(seq),"pids":{"0D":"3C"}}"#)
        }
        try waitFor("70 readings") { try gateway.count("SELECT count(*) FROM readings_v") == 70 }
        #expect(try gateway.count("SELECT duplicates FROM devices_v") == 0)
        #expect(try gateway.count("SELECT seq_resets FROM devices_v") == 1)
        #expect(try gateway.database().scalarText("SELECT fw FROM devices_v") == "1.0.1")
    }

    /// A flood of made-up device ids cannot grow the store without bound.
    @Test func deviceLimitBoundsNewDevices() async throws {
        let live = try LiveGateway(store: #", "max_devices": 3"#)
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for round in 1...2 {
            for sensor in 1...5 {
                try await publisher.send(
                    "v1/water/limit-\(sensor)/level", #"{"ts":\#(now),"seq":\#(round),"level_cm":1}"#)
            }
        }
        try waitFor("stored and refused messages") {
            try gateway.count("SELECT count(*) FROM readings_v") + gateway.count("SELECT count(*) FROM rejects_v") == 10
        }
        #expect(try gateway.count("SELECT count(*) FROM devices_v") == 3)
        #expect(try gateway.count("SELECT count(*) FROM readings_v") == 6)
        #expect(try gateway.count("SELECT count(*) FROM rejects_v WHERE reason = 'device_limit'") == 4)
    }

    @Test func checkConfigListsEveryProblemWithItsKeyPath() throws {
        let scratch = try Scratch()
        let path = scratch.file("bad.json")
        try """
        {"gateway_id": "bad id!", "broker": {"port": 70000, "hots": "x"}, "store": {"capacity_readings": "lots"},
         "log": {"level": "loud"}}
        """.write(toFile: path, atomically: false, encoding: .utf8)
        let check = try ChildProcess(
            name: "check", executable: try binary("gatewayd"), arguments: ["--check-config", path],
            logPath: scratch.file("check.log"))
        check.waitUntilExit()
        #expect(check.terminationStatus == 1)
        let output = check.log
        for expected in [
            "gateway_id: must be", "broker.port: must be between 1 and 65535",
            "broker.hots: unknown key; did you mean \"host\"",
            "store.capacity_readings: must be an integer", "log.level: must be one of",
        ] {
            #expect(output.contains(expected), "missing \(expected) in:\n\(output)")
        }
        let defaults = try ChildProcess(
            name: "defaults", executable: try binary("gatewayd"), arguments: ["--print-default-config"],
            logPath: scratch.file("defaults.json"))
        defaults.waitUntilExit()
        #expect(defaults.terminationStatus == 0)
        let again = try ChildProcess(
            name: "check-defaults", executable: try binary("gatewayd"),
            arguments: ["--check-config", scratch.file("defaults.json")], logPath: scratch.file("check2.log"))
        again.waitUntilExit()
        #expect(again.terminationStatus == 0, "\(again.log)")
    }
}
