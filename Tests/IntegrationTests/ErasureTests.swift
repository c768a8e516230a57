import Crypto
import Foundation
import JSON
import SQLite
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Erasure of one vehicle on request (SECURITY.md, "Data protection"; `gwctl device forget`):
/// everything the board holds about it goes, in one step, while ingest runs; a kill -9 at any
/// moment leaves the old state or the erased one, never a half; other devices keep every row.
@Suite(.serialized, .timeLimit(.minutes(8)))
struct ErasureTests {
    static let target = "1HGCM82633A004352"
    static let others = ["2FTRX18W1XCA01234", "3VWFE21C04M000001"]
    static let gauge = "erase-drain"
    static let operatorToken = "operator-token-for-erasure"
    static let tokens =
        #", "tokens": [{"name": "ops", "role": "operator", "sha256": "\#(SHA256.hex(Array(operatorToken.utf8)))"}]"#

    /// What a test run publishes for one vehicle in one round: readings (4 per message), GPS
    /// fixes, trouble codes, an overheating engine (an alert) and a reject naming it.
    static func publishRound(
        _ publisher: Publisher, vin: String, round: Int, messages: Int, baseMs: Int64
    ) throws {
        let first = round * 100_000
        try publisher.stream(count: messages, window: 200) { index in
            let seq = first + index + 1
            let ts = baseMs + Int64(first + index)
            switch index % 4 {
            case 0:
                return (
                    "v1/obd/\(vin)/gps",
                    #"{"ts":\#(ts),"seq":\#(seq),"lat":3.1\#(index % 10),"lon":101.6\#(index % 7),"speed_kmh":20}"#
                )
            case 1:
                return ("v1/obd/\(vin)/dtc", #"{"ts":\#(ts),"seq":\#(seq),"dtc":"0301"}"#)
            default:
                return (
                    "v1/obd/\(vin)/pids",
                    #"{"ts":\#(ts),"seq":\#(seq),"pids":{"0D":"32","0C":"1AF8","05":"AA","11":"40"}}"#
                )
            }
        }
    }

    /// Rows that still name the vehicle, table by table (the views join device ids to names).
    static func traces(_ gateway: GatewayProcess, _ vin: String) throws -> [String: Int64] {
        var found: [String: Int64] = [:]
        for (table, sql) in [
            ("devices", "SELECT count(*) FROM devices WHERE name = '\(vin)'"),
            ("readings", "SELECT count(*) FROM readings_v WHERE device = '\(vin)'"),
            ("events", "SELECT count(*) FROM events_v WHERE device = '\(vin)'"),
            ("aggregates", "SELECT count(*) FROM aggregates_v WHERE device = '\(vin)'"),
            ("alerts", "SELECT count(*) FROM alerts WHERE device = '\(vin)'"),
            ("alerts_active", "SELECT count(*) FROM alerts_active WHERE device = '\(vin)'"),
            (
                "rejects",
                "SELECT count(*) FROM rejects WHERE instr(topic, '\(vin)') > 0 OR instr(payload_head, CAST('\(vin)' AS BLOB)) > 0"
            ),
            ("outbox", "SELECT count(*) FROM outbox WHERE instr(payload, CAST('\(vin)' AS BLOB)) > 0"),
        ] {
            let count = try gateway.count(sql)
            if count > 0 { found[table] = count }
        }
        return found
    }

    /// Each round: the target and the other vehicles report; more traffic from the others keeps
    /// flowing while `POST /v1/devices/{vin}/forget` runs, and gatewayd is killed (SIGKILL) at a
    /// seeded random moment inside the erasure's measured duration (scaled by the ring's fill). After the restart the file
    /// is intact, the target is either whole or gone, and the others have every row they had.
    /// Then `gwctl device forget` erases it for good: no byte of the VIN stays in the store,
    /// its write-ahead log or the OTA file, and the city side gets the notice and no record of it.
    @Test func erasureDuringIngestSurvivesAKillAndLeavesNoTrace() async throws {
        var random = SplitMix(seed: 18)
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let upstreamPort = try freeLoopbackPort()
        try UpstreamBroker.makeCertificates(in: scratch.file("certs"), gatewayID: "it-erase")
        let certificates = scratch.file("certs")
        // The city link is down until the end: the outbox holds the target's records meanwhile.
        let upstream =
            #""upstream": {"host": "127.0.0.1", "port": \#(upstreamPort), "max_rate_msgs_per_s": 1000, "status_interval_s": 1, "tls": {"ca_file": "\#(certificates)/ca.crt", "cert_file": "\#(certificates)/client.crt", "key_file": "\#(certificates)/client.key"}},"#
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port, store: #", "capacity_readings": 1000000"#,
            extra: upstream, http: Self.tokens,
            gatewayID: "it-erase")
        try gateway.start()
        defer { gateway.stop() }
        let publisher = try Publisher(port: broker.port)
        let baseMs = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
        let perRound = 12_000
        var othersExpected: [String: Int64] = [:]
        var targetRows: Int64 = 0
        var outcomes: [String] = []
        var overheadMs = 0.0
        var msPerRow = 0.0
        var killedAfterMs = 0
        var killedLog = ""

        for round in 0..<6 {
            if round > 0 { try gateway.start() }
            for vin in [Self.target] + Self.others {
                try Self.publishRound(publisher, vin: vin, round: round, messages: perRound, baseMs: baseMs)
            }
            try await publisher.send("v1/obd/\(Self.target)/pids", "{not json, round \(round)")
            try await publisher.send(
                "v1/ota/\(Self.target)/status",
                #"{"campaign":0,"state":"idle","installed":{"hardware_id":"tgu-1","version":"1.0.\#(round)","counter":\#(round + 1),"sha256":"\#(String(repeating: "ab", count: 32))"}}"#
            )
            try await publisher.send(
                "v1/water/\(Self.gauge)/level", #"{"ts":\#(baseMs + Int64(round)),"seq":\#(round + 1),"level_cm":40}"#)
            // 2 of 4 messages carry 4 readings, 1 carries 3 positions: 11 readings per 4 messages.
            let perVehicle = Int64(perRound / 4 * 11)
            targetRows += perVehicle
            for vin in Self.others { othersExpected[vin, default: 0] += perVehicle }
            try waitFor("round \(round) stored", seconds: 60) {
                try gateway.count("SELECT count(*) FROM readings_v WHERE device = '\(Self.target)'") == targetRows
                    && Self.others.allSatisfy { vin in
                        try gateway.count("SELECT count(*) FROM readings_v WHERE device = '\(vin)'")
                            >= othersExpected[vin]!
                    }
                    && gateway.count("SELECT count(*) FROM rejects WHERE instr(topic, '\(Self.target)') > 0") > 0
                    && gateway.log.contains("ota") && FileManager.default.fileExists(atPath: Self.otaPath(gateway))
            }
            try waitFor("the OTA inventory") {
                (try? Database(path: Self.otaPath(gateway), options: [.readOnly]).scalarInt(
                    "SELECT count(*) FROM vehicle_firmware WHERE vin = '\(Self.target)'")) == 1
            }
            let before = Dictionary(
                uniqueKeysWithValues: try Self.others.map { vin in
                    (vin, try gateway.count("SELECT count(*) FROM readings_v WHERE device = '\(vin)'"))
                })
            // More traffic from the others while the erasure runs (their rows after this round's
            // marks are extra: the check is on the rows that were there before).
            let keepSending = Atomic<Bool>(true)
            let background = Thread {
                var index = 0
                while keepSending.load(ordering: .relaxed) {
                    let vin = Self.others[index % Self.others.count]
                    let seq = 10_000_000 + round * 100_000 + index
                    try? publisher.client.publish(
                        topic: "v1/obd/\(vin)/pids",
                        payload: Array(
                            #"{"ts":\#(baseMs + 900_000 + Int64(seq)),"seq":\#(seq),"pids":{"0D":"10"}}"#.utf8),
                        qos: 1)
                    index += 1
                    usleep(500)
                }
            }
            background.start()
            let answer = Mutex<RawResponse?>(nil)
            let requestDone = Atomic<Bool>(false)
            let started = Date()
            let request = Thread {
                let response = try? rawRequest(
                    port: gateway.httpPort,
                    "POST /v1/devices/\(Self.target)/forget HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer \(Self.operatorToken)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    seconds: 60)
                answer.withLock { $0 = response }
                requestDone.store(true, ordering: .releasing)
            }
            request.start()
            if round == 0 {
                // The first round measures how long an erasure takes; the others kill inside that.
                try waitFor("the erasure answered", seconds: 60) { requestDone.load(ordering: .acquiring) }
                // The request's own time, and the erasure's inside gatewayd (its log line): the
                // second grows with the ring (it scans it), the rest does not.
                let total = Date().timeIntervalSince(started) * 1000
                let inside = Double(
                    Self.field("ms", ofLast: "vehicle_forgotten", in: gateway.log).flatMap { Int($0) } ?? Int(total))
                overheadMs = max(0, total - inside)
                msPerRow = inside / Double(max(1, try gateway.count("SELECT count(*) FROM readings")))
                let response = try #require(answer.withLock { $0 })
                #expect(response.status == 200, "\(response.text)")
                let report = try JSONParser.parse(response.body)
                #expect(report["known"] == .bool(true))
                #expect(report["removed"]?["readings"] == .int(perVehicle))
                #expect(report["removed"]?["positions"] == .int(Int64(perRound / 4 * 3)))
                #expect(report["removed"]?["events"] == .int(Int64(perRound / 4)))
                #expect(report["removed"]?["ota_records"] == .int(1))
                #expect((report["removed"]?["rejects"]?.number ?? 0) >= 1)
                #expect((report["removed"]?["alerts"]?.number ?? 0) >= 1)
                #expect((report["upstream_names"]?.number ?? 0) >= 3)
                keepSending.store(false, ordering: .relaxed)
                gateway.stop(signal: SIGKILL)
            } else {
                // From before the erasure starts to a little after it ends, stratified: round k
                // kills at a random point of the k-th fifth of that span.
                let expectedMs = overheadMs + msPerRow * Double(try gateway.count("SELECT count(*) FROM readings"))
                let fraction = (Double(round - 1) + Double(random.next() % 1000) / 1000) / 5
                let delayMs = fraction * expectedMs * 1.3
                usleep(UInt32(delayMs * 1000))
                gateway.stop(signal: SIGKILL)
                killedAfterMs = Int(delayMs)
                killedLog = gateway.log
                keepSending.store(false, ordering: .relaxed)
                try waitFor("the request to end") { requestDone.load(ordering: .acquiring) }
            }
            try gateway.start()
            #expect(try gateway.database().scalarText("PRAGMA integrity_check") == "ok")
            let traces = try Self.traces(gateway, Self.target)
            let held = try gateway.count("SELECT count(*) FROM readings_v WHERE device = '\(Self.target)'")
            let took = Self.field("ms", ofLast: "vehicle_forgotten", in: killedLog).map { "\($0) ms" } ?? "not finished"
            if traces.isEmpty {
                outcomes.append("erased (killed after \(killedAfterMs) ms, erasure \(took))")
                targetRows = 0
            } else {
                // Not erased: then all of it is there, nothing half gone.
                outcomes.append("whole (killed after \(killedAfterMs) ms)")
                #expect(held == targetRows, "round \(round): \(traces)")
                #expect(traces["devices"] == 1 && traces["rejects"] != nil && traces["alerts"] != nil, "\(traces)")
                #expect(try gateway.count("SELECT count(*) FROM events_v WHERE device = '\(Self.target)'") > 0)
            }
            for vin in Self.others {
                #expect(
                    try gateway.count("SELECT count(*) FROM readings_v WHERE device = '\(vin)'") >= before[vin]!,
                    "round \(round): \(vin) lost rows")
                // The ring's accounting: each device's count of readings is what the ring holds of
                // it. One statement, so one snapshot: the restarted gatewayd is still taking the
                // messages the broker queued for it across the kill, and two queries could see a
                // commit land between them.
                let both = try gateway.database().scalarText(
                    """
                    SELECT (SELECT readings FROM devices WHERE name = '\(vin)') || ' ' ||
                           (SELECT count(*) FROM readings_v WHERE device = '\(vin)')
                    """)
                let counts = both?.split(separator: " ") ?? []
                #expect(counts.count == 2 && counts.first == counts.last, "round \(round): \(vin): \(both ?? "none")")
            }
            #expect(
                try gateway.count("SELECT count(*) FROM readings_v WHERE device = '\(Self.gauge)'") == Int64(round + 1))
            if round < 5 { gateway.stop() }
        }
        print("erasure: \(Int(overheadMs)) ms + \(msPerRow * 1e6) ns per ring row; kills: \(outcomes.dropFirst())")

        // The last word through gwctl, as an operator types it.
        let gwctl = try runTool(
            try binary("gwctl"),
            [
                "device", "forget", Self.target, "--gateway", "http://127.0.0.1:\(gateway.httpPort)", "--token",
                Self.operatorToken,
            ], in: scratch)
        #expect(gwctl.status == 0, "\(gwctl.output)")
        #expect(
            gwctl.output.contains("forgotten") || gwctl.output.contains("traces of it were erased"), "\(gwctl.output)")
        #expect(try Self.traces(gateway, Self.target).isEmpty)
        // The log says who erased (the token's name) and what went, never whom.
        let logged = try #require(gateway.log.split(separator: "\n").last { $0.contains("event=vehicle_forgotten ") })
        #expect(logged.contains("requested_by=ops") && !logged.contains(Self.target), "\(logged)")
        let metrics = try rawRequest(port: gateway.httpPort, "GET /metrics HTTP/1.1\r\nHost: gw\r\n\r\n")
        #expect(metrics?.text.contains("gateway_vehicles_forgotten_total 1") == true)
        gateway.stop()
        let vinBytes = Array(Self.target.utf8)
        for file in [
            gateway.databasePath, gateway.databasePath + "-wal", Self.otaPath(gateway), Self.otaPath(gateway) + "-wal",
        ] {
            #expect(!PrivacyTests.fileContains(file, vinBytes), "the VIN is still in \(file)")
        }
        for vin in Self.others {
            #expect(PrivacyTests.fileContains(gateway.databasePath, Array(vin.utf8)), "\(vin) is gone too")
        }

        // The city link comes up: the notice arrives, and nothing queued names the target.
        let city = try UpstreamBroker(scratch: scratch, gatewayID: "it-erase", port: upstreamPort)
        let subscriber = try Subscriber(port: city.port, filter: "city/#", tls: city.clientTLS)
        try gateway.start()
        let notice = try subscriber.waitForMessage(topic: "city/it-erase/erasures", containing: "vehicles", seconds: 30)
        let names = try JSONParser.parse(notice.payload)["vehicles"]?.arrayValue?.compactMap(\.string) ?? []
        #expect(names.count >= 3 && names.allSatisfy { $0.hasPrefix("pv-") })
        try waitFor("the outbox sent", seconds: 60) { try gateway.count("SELECT count(*) FROM outbox") == 0 }
        var others = 0
        for message in subscriber.messages() where !message.topic.hasSuffix("/erasures") {
            let text = String(decoding: message.payload, as: UTF8.self)
            #expect(!text.contains(Self.target))
            for name in names { #expect(!text.contains(name), "\(message.topic) still names the target") }
            if text.contains("\"items\"") { others += 1 }
        }
        #expect(others > 0, "the other vehicles' records went upstream")
        _ = broker
    }

    /// A field of the last log line of an event.
    static func field(_ key: String, ofLast event: String, in log: String) -> String? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("event=\(event) ") }) else { return nil }
        return line.split(separator: " ").first { $0.hasPrefix("\(key)=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    static func otaPath(_ gateway: GatewayProcess) -> String {
        URL(fileURLWithPath: gateway.databasePath).deletingLastPathComponent().appendingPathComponent("ota/ota.db")
            .path
    }
}
