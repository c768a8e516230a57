import Foundation
import JSON
import SQLite
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Fault injection against the real gatewayd, mosquitto and SQLite file: crashes, restarts,
/// full disks, damaged files, clock jumps and hostile traffic. Each test prints one
/// `fault …` line with its figures, which the closing notes and SECURITY.md quote.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct FaultTests {
    static let faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

    /// Whether this machine lets the test mount a small tmpfs (root, not a locked-down container).
    static let canMountTmpfs: Bool = {
        guard geteuid() == 0 else { return false }
        let probe = NSTemporaryDirectory() + "tg-mount-probe-\(getpid())"
        mkdir(probe, 0o755)
        defer { rmdir(probe) }
        guard mount("tmpfs", probe, "tmpfs", 0, "size=1m") == 0 else { return false }
        umount(probe)
        return true
    }()

    static func health(_ gateway: GatewayProcess) throws -> JSONValue {
        try JSONParser.parse(APIEndpointTests.get(gateway.httpPort, "/v1/health", token: nil).body)
    }

    static func metric(_ gateway: GatewayProcess, _ name: String) throws -> Double? {
        let text = try APIEndpointTests.get(gateway.httpPort, "/metrics", token: nil).text
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            .flatMap { Double($0.split(separator: " ")[1]) }
    }

    /// kill -9 at a random point of each of 10 streams. Every round: the file passes
    /// `integrity_check`, every reading committed before any kill is still there, nothing is
    /// stored twice, and what was lost is exactly the seq gaps, within the bound of what was
    /// acknowledged but not yet committed (the inbound queue plus one flush window).
    @Test func killNineTenRounds() throws {
        let inboundQueue = 256
        let live = try LiveGateway(extra: #""limits": {"inbound_queue": \#(inboundQueue), "device_rate_per_s": 1000000},"#)
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let devices = 8
        let perRound = 6_000
        var random = SplitMix(seed: 0x5EED_0009)
        var committedBeforeKills: Set<String> = []
        var losses: [Int64] = []
        var previousGaps: Int64 = 0
        for round in 0..<10 {
            let killAt = perRound / 5 + Int(random.next() % UInt64(perRound * 3 / 5))
            let pid = try #require(gateway.child).pid
            let base = round * perRound
            try publisher.stream(count: perRound, before: { index in if index == killAt { kill(pid, SIGKILL) } }) {
                index in
                let global = base + index
                return (
                    "v1/water/k9-\(global % devices)/level",
                    #"{"ts":\#(now + Int64(global)),"seq":\#(global / devices + 1),"level_cm":\#(global % 500)}"#
                )
            }
            let child = try #require(gateway.child)
            try waitFor("gatewayd to die") { !child.isRunning }
            #expect(try gateway.database().scalarText("PRAGMA integrity_check") == "ok", "round \(round)")
            let database = try gateway.database()
            let rows = try database.statement("SELECT device || ':' || seq FROM readings_v")
            while try rows.step() { committedBeforeKills.insert(rows.text(0) ?? "") }
            try gateway.start()
            let expected = Int64(base + perRound)
            try waitFor("round \(round) to settle") {
                try gateway.count("SELECT count(*) FROM readings_v") + gateway.count("SELECT sum(seq_gaps) FROM devices_v")
                    == expected
            }
            let gaps = try gateway.count("SELECT sum(seq_gaps) FROM devices_v")
            losses.append(gaps - previousGaps)
            previousGaps = gaps
        }
        let stored: Set<String> = try {
            var all: Set<String> = []
            let rows = try gateway.database().statement("SELECT device || ':' || seq FROM readings_v")
            while try rows.step() { all.insert(rows.text(0) ?? "") }
            return all
        }()
        #expect(committedBeforeKills.subtracting(stored).isEmpty, "committed readings missing after later kills")
        #expect(
            try gateway.count(
                "SELECT count(*) FROM (SELECT device, seq FROM readings_v GROUP BY 1, 2 HAVING count(*) > 1)") == 0)
        // The bound: the inbound queue, one drain of 1 024 taken into the batch being built, and
        // what libmosquitto had decoded and acknowledged but not yet queued (its max in flight).
        let bound = Int64(inboundQueue + 1024 + 100)
        for (round, lost) in losses.enumerated() {
            #expect(lost <= bound, "round \(round) lost \(lost), bound \(bound)")
        }
        print("fault kill9 rounds=10 lost_per_round=\(losses.map(String.init).joined(separator: ",")) bound=\(bound)")
    }

    /// The broker restarts (SIGTERM, persistence on) while a stream is in flight: the gateway
    /// reconnects to its persistent session and every message arrives once.
    @Test func brokerRestartMidStreamLosesNothing() throws {
        let scratch = try Scratch()
        let port = try freeLoopbackPort()
        var broker: Broker? = try Broker(scratch: scratch, name: "persistent", port: port, persistence: true)
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: port)
        try gateway.start()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let total = 4_000
        func message(_ index: Int) -> (String, String) {
            ("v1/water/br-\(index % 4)/level", #"{"ts":\#(now + Int64(index)),"seq":\#(index / 4 + 1),"level_cm":3}"#)
        }
        do {
            let publisher = try Publisher(port: port)
            try publisher.stream(count: total / 2, message)
        }
        _ = broker?.child.stop(signal: SIGTERM)
        broker = nil
        try waitFor("gatewayd to notice") { gateway.log.contains("event=mqtt_connection_lost") }
        broker = try Broker(scratch: scratch, name: "persistent", port: port, persistence: true)
        try waitFor("gatewayd to reconnect", seconds: 40) { telemetryConnected(gateway.log, count: 2) }
        do {
            let publisher = try Publisher(port: port)
            try publisher.stream(count: total / 2) { message(total / 2 + $0) }
        }
        try waitFor("every message") { try gateway.count("SELECT count(*) FROM readings_v") == Int64(total) }
        #expect(try gateway.count("SELECT sum(seq_gaps) FROM devices_v") == 0)
        #expect(gateway.child?.isRunning == true)
        _ = broker
    }

    /// A real full disk: the store lives on a 16 MiB tmpfs that a filler file fills up. gatewayd
    /// keeps running, says so in health, logs and metrics, keeps the newest readings in the
    /// space it has, and grows again once the filler is removed.
    @Test(.enabled(if: FaultTests.canMountTmpfs, "needs root to mount a tmpfs"))
    func fullDiskKeepsTheNewestAndRecovers() throws {
        let scratch = try Scratch()
        let mountPoint = scratch.file("small-disk")
        mkdir(mountPoint, 0o755)
        #expect(mount("tmpfs", mountPoint, "tmpfs", 0, "size=16m") == 0)
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port, store: #", "capacity_readings": 1000000, "reserve_bytes": 2097152"#,
            extra: #""aggregation": {"enabled": false},"#, databasePath: mountPoint + "/gateway.db")
        try gateway.start()
        defer { gateway.stop() }
        let publisher = try Publisher(port: broker.port)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var sent = 0
        func stream(_ count: Int) throws {
            let base = sent
            try publisher.stream(count: count) { index in
                let global = base + index
                return ("v1/water/fd-\(global % 10)/level", #"{"ts":\#(now + Int64(global)),"seq":\#(global / 10 + 1),"level_cm":7}"#)
            }
            sent += count
        }
        try stream(5_000)
        try waitFor("the first readings") { try gateway.count("SELECT count(*) FROM readings_v") == 5_000 }
        // Leave about 1 MiB free (and the 2 MiB reserve): not enough for 150 000 readings.
        var stats = statvfs()
        statvfs(mountPoint, &stats)
        let free = Int(stats.f_bavail) * Int(stats.f_frsize)
        let filler = mountPoint + "/filler"
        FileManager.default.createFile(atPath: filler, contents: Data(count: max(0, free - 1024 * 1024)))
        try stream(150_000)
        try waitFor("the disk to fill", seconds: 60) { gateway.log.contains("event=store_full") }
        let last = "fd-\((sent - 1) % 10):\((sent - 1) / 10 + 1)"
        try waitFor("the newest reading", seconds: 60) {
            try gateway.count("SELECT count(*) FROM readings_v WHERE device || ':' || seq = '\(last)'") == 1
        }
        #expect(gateway.child?.isRunning == true)
        let held = try gateway.count("SELECT count(*) FROM readings_v")
        #expect(held > 1_000 && held < Int64(sent), "held \(held) of \(sent)")
        let health = try Self.health(gateway)
        #expect(health["status"] == .string("degraded"), "\(health)")
        #expect(health["store"]?["full"] == .bool(true))
        // The ring (a million) never filled: nothing overwritten, everything dropped for space.
        #expect(health["store"]?["readings_evicted"] == .int(0), "\(health)")
        #expect((health["store"]?["readings_dropped_for_space"]?.number ?? 0) > 0, "\(health)")
        let dropped = try Self.metric(gateway, "gateway_store_reclaimed_readings_total") ?? 0
        let fullEvents = try Self.metric(gateway, "gateway_store_full_total") ?? 0
        #expect(dropped > 0)
        #expect(gateway.log.contains("event=store_reserve_released"))
        #expect(try gateway.database().scalarText("PRAGMA integrity_check") == "ok")
        // Space returns: the reserve is made again (checked every 10 s), and the ring grows past
        // what the full disk held.
        unlink(filler)
        try waitFor("the reserve to be made again", seconds: 30) { access(mountPoint + "/gateway.db.reserve", F_OK) == 0 }
        try stream(20_000)
        try waitFor("the store to grow again", seconds: 60) {
            try gateway.count("SELECT count(*) FROM readings_v") >= held + 15_000
        }
        print("fault disk_full held=\(held) full_events=\(Int(fullEvents)) dropped_for_space=\(Int(dropped)) sent=\(sent)")
    }

    /// `store.max_file_bytes` behaves as a full disk would, without needing a mount.
    @Test func fileSizeLimitKeepsTheNewest() throws {
        let live = try LiveGateway(
            store: #", "capacity_readings": 1000000, "max_file_bytes": 1048576"#,
            extra: #""aggregation": {"enabled": false}, "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},"#)
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let total = 60_000
        try publisher.stream(count: total) { index in
            ("v1/water/cap-\(index % 10)/level", #"{"ts":\#(now + Int64(index)),"seq":\#(index / 10 + 1),"level_cm":7}"#)
        }
        let last = "cap-\((total - 1) % 10):\((total - 1) / 10 + 1)"
        try waitFor("the newest reading", seconds: 60) {
            try gateway.count("SELECT count(*) FROM readings_v WHERE device || ':' || seq = '\(last)'") == 1
        }
        // The database's own size, WAL included (a checkpoint has not necessarily run yet).
        let size = try gateway.count("PRAGMA page_count") * gateway.count("PRAGMA page_size")
        #expect(size <= 1_048_576, "the database is \(size) bytes")
        let held = try gateway.count("SELECT count(*) FROM readings_v")
        #expect(held > 5_000 && held < Int64(total), "held \(held)")
        // The oldest ones went: what is held is the newest, contiguous per device.
        #expect(
            try gateway.count("SELECT count(*) FROM devices_v d WHERE (SELECT max(seq) FROM readings_v r WHERE r.device = d.device) = \(total / 10)")
                == 10)
        #expect(gateway.log.contains("event=store_full"))
        #expect(try Self.metric(gateway, "gateway_store_full_total") ?? 0 > 0)
        print("fault max_file_bytes=1048576 file_bytes=\(size) held=\(held) sent=\(total)")
    }

    /// A damaged database at start: moved aside with a clear log line, a fresh store created,
    /// and the gateway serves.
    @Test func corruptDatabaseIsMovedAside() async throws {
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: broker.port)
        try gateway.start()
        let publisher = try Publisher(port: broker.port)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try publisher.stream(count: 3_000) { index in
            ("v1/water/cx-\(index % 3)/level", #"{"ts":\#(now + Int64(index)),"seq":\#(index / 3 + 1),"level_cm":1}"#)
        }
        try waitFor("readings") { try gateway.count("SELECT count(*) FROM readings_v") == 3_000 }
        gateway.stop()
        // Scribble over pages in the middle of the file, as a failing SD card would.
        let fd = open(gateway.databasePath, O_WRONLY)
        var garbage = SplitMix(seed: 7)
        let junk = (0..<16_384).map { _ in UInt8(truncatingIfNeeded: garbage.next()) }
        _ = junk.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 8192) }
        close(fd)
        try gateway.start()
        #expect(gateway.log.contains("event=store_corrupt_moved_aside"), "\(gateway.log)")
        let moved = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.contains(".corrupt-") }
        #expect(!moved.isEmpty)
        try await publisher.send("v1/water/cx-9/level", #"{"ts":\#(now),"seq":1,"level_cm":2}"#)
        try waitFor("the fresh store to take readings") { try gateway.count("SELECT count(*) FROM readings_v") == 1 }
        #expect(try Self.health(gateway)["status"] == .string("ok"))
    }

    /// The wall clock jumps back two hours, then forward five, while devices stream: nothing
    /// is lost or doubled, commits go on (they are timed by the monotonic clock), the file stays sound.
    @Test(
        .enabled(if: FileManager.default.fileExists(atPath: FaultTests.faketime), "needs libfaketime (apt-get install faketime)"),
        // An AddressSanitizer build must load its runtime first, so it cannot take LD_PRELOAD.
        .enabled(if: ProcessInfo.processInfo.environment["TG_SANITIZER"] == nil, "libfaketime cannot preload into an ASan build"))
    func wallClockJumps() throws {
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: broker.port)
        let clock = try gateway.fakeWallClock()
        try gateway.start()
        defer { gateway.stop() }
        let publisher = try Publisher(port: broker.port)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var sent = 0
        var streamed = 0
        var probes = 0
        /// Waits until gatewayd's wall clock reads `hours` off the real one, by what it stamps
        /// a new device's first sight with (not by sleeping for libfaketime's cache to expire).
        func waitForGatewayClock(hours: Int64) throws {
            try waitFor("gatewayd's clock at \(hours) h", seconds: 20) {
                probes += 1
                let probe = "probe-\(probes)"
                try publisher.stream(count: 1) { _ in
                    ("v1/water/\(probe)/level", #"{"ts":\#(now),"seq":1,"level_cm":1}"#)
                }
                sent += 1
                try waitFor("\(probe) stored") {
                    try gateway.count("SELECT count(*) FROM devices_v WHERE device = '\(probe)'") == 1
                }
                let seen = try gateway.count("SELECT first_seen_ms FROM devices_v WHERE device = '\(probe)'")
                let expected = Int64(Date().timeIntervalSince1970 * 1000) + hours * 3_600_000
                return abs(seen - expected) < 600_000
            }
        }
        for (offset, hours) in [("-2h", Int64(-2)), ("+3h", 3), ("+0", 0)] {
            for _ in 0..<3 {
                let base = streamed
                try publisher.stream(count: 1_000) { index in
                    let global = base + index
                    return ("v1/water/clk-\(global % 5)/level", #"{"ts":\#(now + Int64(global)),"seq":\#(global / 5 + 1),"level_cm":\#(global % 300)}"#)
                }
                streamed += 1_000
                sent += 1_000
            }
            try offset.write(toFile: clock, atomically: true, encoding: .utf8)
            try waitForGatewayClock(hours: hours)
        }
        try waitFor("every message") { try gateway.count("SELECT count(*) FROM readings_v") == Int64(sent) }
        let gapped = try gateway.database().scalarText(
            "SELECT group_concat(device || ':' || seq_gaps) FROM devices_v WHERE seq_gaps > 0")
        #expect(try gateway.count("SELECT sum(seq_gaps) FROM devices_v") == 0, "\(gapped ?? "")")
        #expect(try gateway.count("SELECT sum(duplicates) FROM devices_v") == 0)
        #expect(gateway.child?.isRunning == true)
        #expect(try gateway.database().scalarText("PRAGMA integrity_check") == "ok")
        #expect(try Self.health(gateway)["status"] == .string("ok"))
        print("fault clock_jumps=-2h,+5h,-3h messages=\(sent) lost=0")
    }

    /// 100 000 distinct device ids, one message each: all tracked (the default limit), the next
    /// new one refused with `device_limit`, known devices still served.
    @Test func hundredThousandDeviceIDs() async throws {
        let live = try LiveGateway(store: #", "capacity_readings": 200000"#, extra: #""aggregation": {"enabled": false},"#)
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let devices = 100_000
        try publisher.stream(count: devices, window: 500) { index in
            ("v1/water/id-\(index)/level", #"{"ts":\#(now),"seq":1,"level_cm":1}"#)
        }
        try waitFor("every device", seconds: 90) { try gateway.count("SELECT count(*) FROM devices_v") == Int64(devices) }
        try await publisher.send("v1/water/one-too-many/level", #"{"ts":\#(now),"seq":1,"level_cm":1}"#)
        try await publisher.send("v1/water/id-7/level", #"{"ts":\#(now + 1),"seq":2,"level_cm":1}"#)
        try waitFor("the refusal and the known device") {
            try gateway.count("SELECT count(*) FROM rejects_v WHERE reason = 'device_limit'") == 1
                && gateway.count("SELECT count(*) FROM readings_v") == Int64(devices + 1)
        }
        let pid = try #require(gateway.child).pid
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? "VmHWM: ?"
        print("fault devices=\(devices) peak_rss=\(rss.split(separator: " ").dropFirst().joined(separator: " "))")
    }

    /// Topics no device should send. Those the broker lets through are refused by the gateway
    /// with a reason; those MQTT forbids (wildcards, NUL) are refused by the broker itself, which
    /// drops the sender. A good device interleaved with them loses nothing.
    @Test func hostileTopicsAreRefusedAndGoodDataFlows() async throws {
        let live = try LiveGateway()
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let payload = #"{"ts":\#(now),"seq":1,"level_cm":1}"#
        let hostile = [
            "v1/water/../level", "v1/water/a..b/level", "v1/water//level", "v1/water/" + String(repeating: "x", count: 4000) + "/level",
            "v1/water/caf\u{E9}/level", "v1/water/a b/level", "v1/water/a%2Fb/level", "v1/water/ok-1/level/extra",
            "v1/obd/NOT-A-VIN/pids", "v1/obd/5YJSA1E2I00000001/pids", "v1/water/x\u{202E}y/level",
        ]
        for (index, topic) in hostile.enumerated() {
            try await publisher.send(topic, payload)
            try await publisher.send("v1/water/good/level", #"{"ts":\#(now + Int64(index)),"seq":\#(index + 1),"level_cm":5}"#)
        }
        // Wildcards and NUL are not valid in a PUBLISH topic: send the raw packets ourselves.
        for topic in ["v1/water/+/level", "v1/water/#", "v1/water/a\u{0}b/level"] {
            let raw = try RawConnection(port: live.broker.port)
            raw.send(Self.mqttConnect(clientID: "hostile-\(topic.utf8.count)"))
            _ = raw.readAll(seconds: 0.5)
            raw.send(Self.mqttPublish(topic: Array(topic.utf8), payload: Array(payload.utf8)))
            #expect(raw.isClosedByPeer(seconds: 3), "the broker kept a client that published to \(topic)")
        }
        try await publisher.send("v1/water/good/level", #"{"ts":\#(now + 100),"seq":100,"level_cm":5}"#)
        try waitFor("every good message and every refusal") {
            try gateway.count("SELECT count(*) FROM readings_v WHERE device = 'good'") == Int64(hostile.count + 1)
                && gateway.count("SELECT count(*) FROM rejects_v") == Int64(hostile.count)
        }
        #expect(try gateway.count("SELECT count(*) FROM readings_v WHERE device <> 'good'") == 0)
        #expect(try gateway.count("SELECT count(*) FROM devices_v") == 1)
        #expect(try gateway.count("SELECT max(length(topic)) FROM rejects_v") <= 256)
        #expect(gateway.child?.isRunning == true)
    }

    /// One device floods at 100× its allowed rate: its excess is refused (`rate_limited`,
    /// counted), the others keep every message.
    @Test func floodingDeviceIsRateLimited() throws {
        let live = try LiveGateway(extra: #""limits": {"device_rate_per_s": 10, "device_burst": 20},"#)
        defer { withExtendedLifetime(live) {} }
        let (gateway, publisher) = (live.gateway, live.publisher)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // 2 s: the flooder sends 2 000 (1 000/s, 100× its 10/s), five others 5/s each.
        let started = Date()
        var flooded = 0
        var polite = 0
        for tick in 0..<20 {
            try publisher.stream(count: 100) { index in
                flooded += 1
                return ("v1/water/flood/level", #"{"ts":\#(now + Int64(flooded)),"seq":\#(flooded),"level_cm":1}"#)
            }
            if tick % 2 == 0 {
                try publisher.stream(count: 5) { index in
                    polite += 1
                    return ("v1/water/calm-\(index)/level", #"{"ts":\#(now + Int64(tick)),"seq":\#(tick / 2 + 1),"level_cm":2}"#)
                }
            }
            let due = started.addingTimeInterval(Double(tick + 1) * 0.1)
            let wait = due.timeIntervalSinceNow
            if wait > 0 { usleep(UInt32(wait * 1e6)) }
        }
        let elapsed = Date().timeIntervalSince(started)
        try waitFor("every message stored or refused") {
            try gateway.count("SELECT count(*) FROM readings_v") + gateway.count("SELECT count(*) FROM rejects_v")
                == Int64(flooded + polite)
        }
        #expect(try gateway.count("SELECT count(*) FROM readings_v WHERE device LIKE 'calm-%'") == Int64(polite))
        let admitted = try gateway.count("SELECT count(*) FROM readings_v WHERE device = 'flood'")
        // The bucket refills by arrival time, which may trail the publisher on a loaded machine:
        // a few seconds of slack, still twenty times below what was sent.
        let limit = Int64(20 + 10 * (elapsed + 5))
        #expect(admitted >= 20 && admitted <= limit, "admitted \(admitted) in \(elapsed) s, limit \(limit)")
        #expect(try gateway.count("SELECT count(*) FROM rejects_v WHERE reason = 'rate_limited'") == Int64(flooded) - admitted)
        let counted = try Self.metric(gateway, #"gateway_rejects_total{reason="rate_limited"}"#)
        #expect(counted == Double(Int64(flooded) - admitted))
        print("fault flood sent=\(flooded) admitted=\(admitted) others=\(polite)/\(polite) seconds=\(String(format: "%.1f", elapsed))")
    }

    static func mqttConnect(clientID: String) -> [UInt8] {
        let id = Array(clientID.utf8)
        let variable: [UInt8] = [0, 4] + Array("MQTT".utf8) + [4, 2, 0, 30] + [UInt8(id.count >> 8), UInt8(id.count & 0xFF)] + id
        return [0x10, UInt8(variable.count)] + variable
    }

    static func mqttPublish(topic: [UInt8], payload: [UInt8]) -> [UInt8] {
        let body = [UInt8(topic.count >> 8), UInt8(topic.count & 0xFF)] + topic + payload
        return [0x30, UInt8(body.count)] + body
    }
}
