import Advisories
import Aggregation
import Alerts
import Foundation
import Geo
import JSON
import Logging
import MQTT
import Privacy
import RingStore
import SQLite
import Synchronization
import Telemetry
import Upstream

/// gwbench: measurements that need a client on both sides of gatewayd.
///
///   gwbench alert-latency --local-port P --upstream-port U --certs DIR --gateway-id ID [--count N]
///       [--interval-ms 10] [--samples-out FILE] [--sensor NAME]
///       publishes alarm and all-clear levels on the local broker, one at a time, and times each
///       alert's arrival at the upstream broker (mutual TLS); prints p50, p99, p99.9 and max, and
///       writes "send_wall_ms latency_ms" per alert to FILE.
///   gwbench fill-outbox --db FILE --rows N [--batch 500] [--gateway-id ID]
///       writes N aggregate rows as upstream batches into a stopped gateway's outbox, in the
///       exact wire format, to measure how fast a backlog drains.
///   gwbench advisory-latency --port P [--count N]
///       a vehicle parked inside gauge `bench-gauge`'s circle (the caller configures the site at
///       3.1390, 101.6869, 500 m); alternates alarm and normal levels and times each reading's
///       publish until the vehicle receives its advisory (alarm or cleared); prints p50, p99, max.
///   gwbench advisory-cpu [--vehicles 10000] [--gauges 1000] [--updates 1000000]
///       the advisory engine alone with every gauge flooding: CPU per 1 000 position updates.
///   gwbench ota-baseline --port P [--vehicles 200] [--bytes 8388608] [--block-size 16384]
///       the broker alone moving what an OTA campaign moves: one publisher sends every vehicle
///       its image in blocks (QoS 0, 16-byte header, round robin, at most 64 publishes not yet
///       written), one subscriber connection per vehicle counts bytes; prints the seconds.
///   gwbench ingest --port P (--db FILE [--gateway-pid PID] | --baseline 1) [...]
///       the ingest load generator (IngestLoad.swift): readings/s counted where they land,
///       loss, publish → committed latency, gatewayd CPU and RSS; one key=value line, and a JSON
///       line appended to --json-out. Exits 1 when a reading was not counted (unless --allow-loss 1).
///   gwbench chart --in RESULTS.jsonl --out CHART.svg
///       readings/s (gateway and broker alone) and gatewayd's peak RSS against device count.
///   gwbench seed-api --db FILE [--devices 10000] [--hours 24] [--capacity 1000000]
///       writes, through the ring store itself (so aggregates are computed as in production),
///       one gauge `bench-gauge` with a reading every second for the last N hours and N devices
///       with one reading each: the data set of the REST API benchmark.
///   gwbench privacy --db FILE [--vehicles 1000] [--messages 200]
///       what location privacy costs: encoding a 500-window upstream batch of vehicles with plain
///       VINs and with pseudonyms (microseconds per batch), and the retention sweep that erases
///       an hour-old set of positions (VEHICLES × MESSAGES GPS fixes, beside as many other
///       readings) from a real store: commits, total time and the slowest commit.
///   gwbench restart-warm --db FILE [--capacity 1000000]
///       what a restart costs before ingest resumes: opening the store (migrations, devices, one
///       pass for the newest values) and rebuilding the gauges' trends from the levels written in
///       the last 30 minutes; prints each in milliseconds.
let usage = """
    usage: gwbench alert-latency --local-port P --upstream-port U --certs DIR --gateway-id ID [--count N] [--interval-ms 10] [--samples-out FILE] [--sensor NAME]
           gwbench fill-outbox --db FILE --rows N [--batch 500] [--gateway-id ID]
           gwbench seed-api --db FILE [--devices 10000] [--hours 24] [--capacity 1000000]
           gwbench restart-warm --db FILE [--capacity 1000000]
           gwbench privacy --db FILE [--vehicles 1000] [--messages 200]
           gwbench advisory-latency --port P [--count 200]
           gwbench advisory-cpu [--vehicles 10000] [--gauges 1000] [--updates 1000000]
           gwbench ota-baseline --port P [--vehicles 200] [--bytes 8388608] [--block-size 16384]
           gwbench ingest --port P (--db FILE [--gateway-pid PID] | --baseline 1) [--devices 1000] [--water-pct 20]
                  [--qos 1] [--connections 4] [--window 1000] [--rate MSGS_PER_S] [--messages N | --duration S]
                  [--sample-every S] [--label L] [--json-out FILE] [--allow-loss 1] [--settle-s 5] [--exclude-device NAME]
           gwbench chart --in RESULTS.jsonl --out CHART.svg
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("gwbench: \(message)\n".utf8))
    exit(64)
}

let command = CommandLine.arguments.dropFirst().first ?? ""
let options: [String: String] = {
    var arguments = Array(CommandLine.arguments.dropFirst(2))
    var parsed: [String: String] = [:]
    while let flag = arguments.first {
        arguments.removeFirst()
        guard flag.hasPrefix("--"), let value = arguments.first else { fail("bad argument \(flag)\n\(usage)") }
        arguments.removeFirst()
        parsed[String(flag.dropFirst(2))] = value
    }
    return parsed
}()
func option(_ name: String) -> String {
    guard let value = options[name] else { fail("--\(name) is required\n\(usage)") }
    return value
}
func number(_ name: String, default value: Int) -> Int {
    guard let text = options[name] else { return value }
    guard let parsed = Int(text) else { fail("--\(name) must be an integer") }
    return parsed
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}

switch command {
case "alert-latency":
    let count = number("count", default: 1000)
    let certs = option("certs")
    let gatewayID = option("gateway-id")
    let logger = Logger(level: .error)
    var upstreamConfiguration = MQTTClient.Configuration(clientID: "gwbench-city-\(getpid())")
    upstreamConfiguration.port = Int(option("upstream-port"))!
    upstreamConfiguration.cleanSession = true
    upstreamConfiguration.tls = .init(
        caFile: certs + "/ca.crt", certFile: certs + "/client.crt", keyFile: certs + "/client.key")
    upstreamConfiguration.subscriptions = [("city/\(gatewayID)/alerts", 1)]
    var localConfiguration = MQTTClient.Configuration(clientID: "gwbench-sensor-\(getpid())")
    localConfiguration.port = Int(option("local-port"))!
    localConfiguration.cleanSession = true
    let upstream = try MQTTClient(configuration: upstreamConfiguration, logger: logger)
    let local = try MQTTClient(configuration: localConfiguration, logger: logger)
    upstream.start()
    local.start()
    let deadline = Date().addingTimeInterval(15)
    while !(upstream.isConnected && local.isConnected) {
        if Date() > deadline { fail("could not connect to both brokers") }
        usleep(10_000)
    }
    usleep(300_000)
    let sensor = options["sensor"] ?? "bench-alerts-\(getpid())"
    var latencies: [Double] = []
    var inbox: [InboundMessage] = []
    var timeouts = 0
    // Each alarm's wall-clock send time and latency, one line each, to see where in the minute
    // the slow ones fall (the soak compares window closes with the rest of the minute).
    var samples = ""
    // Paced below the upstream rate limit, so what is measured is latency, not throttling.
    let intervalNanos = UInt64(number("interval-ms", default: 10)) * 1_000_000
    var nextSend = monotonicNanos()
    for index in 0..<count {
        while monotonicNanos() < nextSend { usleep(200) }
        nextSend = monotonicNanos() + intervalNanos
        let ts = Int64(Date().timeIntervalSince1970 * 1000) + Int64(index)
        let level = index % 2 == 0 ? 300.0 : 10.0
        let payload = #"{"ts":\#(ts),"seq":\#(index + 1),"level_cm":\#(level)}"#
        let sent = monotonicNanos()
        try local.publish(topic: "v1/water/\(sensor)/level", payload: Array(payload.utf8), qos: 1)
        var matched = false
        while !matched && monotonicNanos() - sent < 5_000_000_000 {
            inbox.removeAll(keepingCapacity: true)
            _ = upstream.inbound.drain(into: &inbox, max: 100, deadlineNanos: monotonicNanos() + 100_000_000)
            for message in inbox {
                guard let alert = try? JSONParser.parse(message.payload), alert["device"] == .string(sensor),
                    alert["ts_ms"] == .int(ts), alert["type"] == .string("water_level")
                else { continue }
                let latency = Double(monotonicNanos() - sent) / 1e6
                latencies.append(latency)
                samples += String(format: "%lld %.3f\n", ts - Int64(index), latency)
                matched = true
            }
        }
        if !matched { timeouts += 1 }
    }
    local.stop()
    upstream.stop()
    if let path = options["samples-out"] { try samples.write(toFile: path, atomically: true, encoding: .utf8) }
    guard !latencies.isEmpty else { fail("no alert arrived upstream") }
    let sorted = latencies.sorted()
    print(
        String(
            format: "alerts=%d timeouts=%d p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f", sorted.count, timeouts,
            percentile(sorted, 0.5), percentile(sorted, 0.99), percentile(sorted, 0.999), sorted.last!))
case "fill-outbox":
    let rows = number("rows", default: 1_000_000)
    let batchSize = number("batch", default: 500)
    let gatewayID = options["gateway-id"] ?? "bench"
    let database = try Database(path: option("db"))
    let insert = try database.statement(
        "INSERT INTO outbox(priority, topic, payload, created_ms) VALUES (2, 'aggregates', ?, ?)")
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    var written = 0
    var batches = 0
    try database.transaction {
        while written < rows {
            let size = min(batchSize, rows - written)
            let items = (0..<size).map { offset -> JSONValue in
                let index = written + offset
                return .object(
                    JSONObject([
                        ("device", .string("bench-\(index % 10_000)")), ("signal", .string("level_cm")),
                        ("window_s", .int(60)), ("start_ms", .int(now - Int64(index / 10_000 + 1) * 60_000)),
                        ("count", .int(60)), ("min", .double(10.5)), ("max", .double(42.25)),
                        ("mean", .double(20.125)), ("sum", .double(1207.5)), ("last", .double(19.75)),
                        ("revision", .int(1)),
                    ]))
            }
            let batch = JSONValue.object(
                JSONObject([
                    ("batch_id", .string("\(gatewayID)-\(UUID().uuidString.lowercased())")),
                    ("gateway_id", .string(gatewayID)), ("items", .array(items)),
                ]))
            insert.bind(arguments: Array(batch.serialized().utf8), now)
            try insert.run()
            written += size
            batches += 1
        }
    }
    print("rows=\(written) messages=\(batches)")
case "advisory-latency":
    let count = number("count", default: 200)
    let logger = Logger(level: .error)
    let vin = "1HGCM82633A0BENCH"
    var vehicleConfiguration = MQTTClient.Configuration(clientID: "gwbench-vehicle-\(getpid())")
    vehicleConfiguration.port = Int(option("port"))!
    vehicleConfiguration.cleanSession = true
    vehicleConfiguration.subscriptions = [("v1/advisory/\(vin)", 1)]
    var gaugeConfiguration = MQTTClient.Configuration(clientID: "gwbench-gauge-\(getpid())")
    gaugeConfiguration.port = vehicleConfiguration.port
    gaugeConfiguration.cleanSession = true
    let vehicle = try MQTTClient(configuration: vehicleConfiguration, logger: logger)
    let gauge = try MQTTClient(configuration: gaugeConfiguration, logger: logger)
    vehicle.start()
    gauge.start()
    let deadline = Date().addingTimeInterval(15)
    while !(vehicle.isConnected && gauge.isConnected) {
        if Date() > deadline { fail("could not connect to the broker") }
        usleep(10_000)
    }
    usleep(300_000)
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    try vehicle.publish(
        topic: "v1/obd/\(vin)/gps", payload: Array(#"{"ts":\#(now),"seq":1,"lat":3.1395,"lon":101.6869}"#.utf8), qos: 1)
    usleep(500_000)
    var latencies: [Double] = []
    var inbox: [InboundMessage] = []
    var timeouts = 0
    // Each alarm's wall-clock send time and latency, one line each, to see where in the minute
    // the slow ones fall (the soak compares window closes with the rest of the minute).
    var samples = ""
    for index in 0..<(2 * count) {
        let alarm = index % 2 == 0
        let ts = Int64(Date().timeIntervalSince1970 * 1000)
        let payload = #"{"ts":\#(ts),"seq":\#(index + 1),"level_cm":\#(alarm ? 300.0 : 10.0)}"#
        let sent = monotonicNanos()
        try gauge.publish(topic: "v1/water/bench-gauge/level", payload: Array(payload.utf8), qos: 1)
        var matched = false
        while !matched && monotonicNanos() - sent < 5_000_000_000 {
            inbox.removeAll(keepingCapacity: true)
            _ = vehicle.inbound.drain(into: &inbox, max: 10, deadlineNanos: monotonicNanos() + 100_000_000)
            for message in inbox {
                guard let advisory = try? JSONParser.parse(message.payload),
                    advisory["state"] == .string(alarm ? "alarm" : "cleared")
                else { continue }
                let latency = Double(monotonicNanos() - sent) / 1e6
                latencies.append(latency)
                samples += String(format: "%lld %.3f\n", ts - Int64(index), latency)
                matched = true
            }
        }
        if !matched { timeouts += 1 }
        usleep(5_000)
    }
    vehicle.stop()
    gauge.stop()
    let sorted = latencies.sorted()
    guard !sorted.isEmpty else { fail("no advisory arrived") }
    print(
        String(
            format: "advisories=%d timeouts=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f", sorted.count, timeouts,
            percentile(sorted, 0.5), percentile(sorted, 0.99), sorted.last!))
case "advisory-cpu":
    let vehicles = number("vehicles", default: 10_000)
    let gauges = number("gauges", default: 1_000)
    let updates = number("updates", default: 1_000_000)
    var engine = AdvisoryEngine(idPrefix: "bench")
    var random = SystemRandomNumberGenerator()
    // A city 25 km across; gauges every ~800 m on a grid, each covering 300 m, all flooding.
    let side = Int(Double(gauges).squareRoot().rounded(.up))
    for index in 0..<gauges {
        let position = GeoPoint(
            lat: 3.0 + Double(index / side) * 0.0072, lon: 101.5 + Double(index % side) * 0.0072)
        _ = engine.setSite(GaugeSite(sensor: "g\(index)", position: position, radiusM: 300), tsMs: 0)
        _ = engine.gaugeChanged(sensor: "g\(index)", state: .alarm, levelCm: 300, tsMs: 0)
    }
    var positions = (0..<vehicles).map { _ in
        GeoPoint(
            lat: 3.0 + Double.random(in: 0..<0.23, using: &random),
            lon: 101.5 + Double.random(in: 0..<0.23, using: &random))
    }
    let names = (0..<vehicles).map { "V\($0)" }
    for index in 0..<vehicles { _ = engine.vehicleMoved(vin: names[index], to: positions[index], tsMs: 0) }
    var advised = 0
    var clock = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &clock)
    let cpuStart = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9
    let wallStart = monotonicNanos()
    for update in 0..<updates {
        let index = update % vehicles
        // About 10 m per update, like a bus reporting every second.
        positions[index].lat += Double.random(in: -0.0001...0.0001, using: &random)
        positions[index].lon += Double.random(in: -0.0001...0.0001, using: &random)
        advised += engine.vehicleMoved(vin: names[index], to: positions[index], tsMs: Int64(update)).count
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &clock)
    let cpu = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9 - cpuStart
    let wall = Double(monotonicNanos() - wallStart) / 1e9
    print(
        String(
            format:
                "vehicles=%d gauges=%d updates=%d advisories=%d cpu_s=%.3f cpu_us_per_1000_updates=%.1f updates_per_s=%.0f",
            vehicles, gauges, updates, advised, cpu, cpu / Double(updates) * 1e9, Double(updates) / wall))
case "seed-api":
    let devices = number("devices", default: 10_000)
    let hours = number("hours", default: 24)
    var configuration = RingStore.Configuration(path: option("db"))
    configuration.synchronous = .normal
    configuration.maxDevices = devices + 1000
    configuration.capacityReadings = Int64(number("capacity", default: 1_000_000))
    let store = try RingStore(configuration: configuration, logger: Logger(level: .warning))
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let start = now - Int64(hours) * 3_600_000
    let gauge = DeviceID(sensor: SensorID("bench-gauge")!)
    var batch = IngestBatch()
    var seq: UInt32 = 1
    var ts = start - start % 1000
    let began = Date()
    // One minute of 1 Hz readings per commit, the clock just after it, as the pipeline would.
    while ts < now {
        let level = 80 + 60 * sin(Double(ts) / 3_600_000) + Double(seq % 7)
        batch.append(.readings(device: gauge, ts: ts, seq: seq, readings: [Reading(signal: .waterLevel, value: level)]))
        seq &+= 1
        ts += 1000
        if batch.readingCount >= 60 {
            _ = try store.commit(batch, nowMs: ts + 1)
            batch.removeAll()
        }
    }
    for index in 0..<devices {
        let id =
            index % 2 == 0
            ? DeviceID(sensor: SensorID(String(format: "drain-%05d", index))!)
            : DeviceID(vin: VIN(String(format: "1HGCM8263%08d", index))!)
        let signal: Signal = index % 2 == 0 ? .waterLevel : .speed
        batch.append(
            .readings(device: id, ts: now - Int64(index), seq: 1, readings: [Reading(signal: signal, value: 42)]))
        if batch.items.count >= 1000 {
            _ = try store.commit(batch, nowMs: now)
            batch.removeAll()
        }
    }
    _ = try store.commit(batch, nowMs: now)
    try store.checkpoint()
    print(
        String(
            format: "readings=%d devices=%d seconds=%.1f", Int(seq) - 1 + devices, devices + 1,
            Date().timeIntervalSince(began)))
case "privacy":
    let vehicles = number("vehicles", default: 1000)
    let perVehicle = number("messages", default: 200)
    let vins = (0..<vehicles).map { String(format: "1TGSV%012d", $0) }
    let start: Int64 = 1_767_225_600_000
    // Encoding: one full batch, 500 vehicle windows (34 vehicles, 15 signals each), plain and
    // pseudonymous.
    var summary = CommitSummary()
    summary.aggregates = (0..<500).map { index in
        AggregateRow(
            device: vins[(index / 15) % vins.count], signal: "speed_kmh", windowS: 60, startMs: start,
            stats: WindowStats(count: 60, sum: 1800, min: 0, max: 60, firstTs: start, lastTs: start + 59_000, last: 30),
            revision: 1, isVehicle: true)
    }
    let pseudonyms = Pseudonymizer(secret: [UInt8](repeating: 1, count: 32), periodDays: 30)
    func timeEncode(_ identity: UpstreamIdentity, rounds: Int) -> Double {
        let began = DispatchTime.now().uptimeNanoseconds
        var bytes = 0
        for _ in 0..<rounds {
            bytes += UpstreamMessages.encode(summary: summary, batch: IngestBatch(), identity: identity)[0].payload.count
        }
        precondition(bytes > 0)
        return Double(DispatchTime.now().uptimeNanoseconds - began) / 1000 / Double(rounds)
    }
    _ = timeEncode(UpstreamIdentity(gatewayID: "bench", pseudonyms: pseudonyms), rounds: 20)
    let plainUs = timeEncode(UpstreamIdentity(gatewayID: "bench", pseudonyms: nil), rounds: 200)
    let pseudonymUs = timeEncode(UpstreamIdentity(gatewayID: "bench", pseudonyms: pseudonyms), rounds: 200)
    // Retention: positions written at `start`, swept by a commit two hours later.
    var configuration = RingStore.Configuration(path: option("db"))
    configuration.capacityReadings = Int64(vehicles * perVehicle * 8)
    configuration.positionRetentionMs = 3_600_000
    configuration.aggregation.enabled = false
    configuration.maxDevices = vehicles + 10
    let store = try RingStore(configuration: configuration, logger: Logger(level: .warning))
    for message in 0..<perVehicle {
        var batch = IngestBatch()
        let ts = start + Int64(message) * 1000
        for (index, vin) in vins.enumerated() {
            let device = DeviceID(vin: VIN(vin)!)
            let seq = UInt32(message * 2 + 1)
            batch.append(
                .readings(
                    device: device, ts: ts, seq: seq,
                    readings: [
                        Reading(signal: .latitude, value: 3.1 + Double(index) * 1e-4),
                        Reading(signal: .longitude, value: 101.6 + Double(message) * 1e-4),
                        Reading(signal: .gpsSpeed, value: 30),
                    ]))
            batch.append(
                .readings(
                    device: device, ts: ts, seq: seq + 1,
                    readings: [Reading(signal: .speed, value: 30), Reading(signal: .engineRPM, value: 1500)]))
        }
        _ = try store.commit(batch, nowMs: ts)
    }
    // Two hours on: the sweep runs a slice per commit until it is through.
    let sweepNow = start + Int64(perVehicle) * 1000 + 2 * 3_600_000
    var erased = 0
    var commits = 0
    var slowestMs = 0.0
    var totalMs = 0.0
    repeat {
        let began = DispatchTime.now().uptimeNanoseconds
        erased += try store.commit(IngestBatch(), nowMs: sweepNow).positionsErased
        let took = Double(DispatchTime.now().uptimeNanoseconds - began) / 1e6
        slowestMs = max(slowestMs, took)
        totalMs += took
        commits += 1
    } while store.aggregationDue(nowMs: sweepNow)
    // Erasure of one vehicle from the full ring: one transaction, one scan of the ring.
    let ringRows = store.statistics.readings
    let eraseBegan = DispatchTime.now().uptimeNanoseconds
    let report = try store.forget(VIN(vins[0])!, nowMs: sweepNow)
    let eraseMs = Double(DispatchTime.now().uptimeNanoseconds - eraseBegan) / 1e6
    precondition(report.known && report.readings == perVehicle * 2)
    print(
        String(
            format:
                "encode_500_plain_us=%.0f encode_500_pseudonym_us=%.0f pseudonym_ns_per_window=%.0f positions_erased=%d readings_kept=%d sweep_commits=%d sweep_total_ms=%.0f sweep_slowest_commit_ms=%.1f forget_ring_rows=%d forget_ms=%.0f",
            plainUs, pseudonymUs, (pseudonymUs - plainUs) * 1000 / 500, erased, vehicles * perVehicle * 2, commits,
            totalMs, slowestMs, ringRows, eraseMs))
case "restart-warm":
    var configuration = RingStore.Configuration(path: option("db"))
    configuration.capacityReadings = Int64(number("capacity", default: 1_000_000))
    configuration.maxDevices = 1_000_000
    let opening = Date()
    let store = try RingStore(configuration: configuration, logger: Logger(level: .warning))
    let opened = Date().timeIntervalSince(opening)
    var alerts = AlertEngine(waterDefaults: WaterAlertSettings(), waterOverrides: [:], coolantLimitC: 110)
    let warming = Date()
    let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
    let levels = try store.recentWaterLevels(sinceMs: nowMs - alerts.warmWindowMs)
    let read = Date().timeIntervalSince(warming)
    alerts.warm(levels, nowMs: nowMs)
    let warmed = Date().timeIntervalSince(warming)
    let points = levels.values.reduce(0) { $0 + $1.count }
    let rising = alerts.waterSensors.filter { alerts.forecast(sensor: $0).status != .insufficient }.count
    print(
        String(
            format: "open_ms=%.1f levels_read_ms=%.1f warm_ms=%.1f sensors=%d points=%d with_forecast=%d",
            opened * 1000, read * 1000, warmed * 1000, levels.count, points, rising))
case "ota-baseline":
    let port = number("port", default: 1883)
    let vehicles = number("vehicles", default: 200)
    let bytes = number("bytes", default: 8 * 1024 * 1024)
    let blockSize = number("block-size", default: 16 * 1024)
    let blocks = (bytes + blockSize - 1) / blockSize
    let logger = Logger(level: .warning)
    var subscribers: [MQTTClient] = []
    for index in 0..<vehicles {
        var configuration = MQTTClient.Configuration(clientID: "ota-baseline-sub-\(index)")
        configuration.port = port
        configuration.cleanSession = true
        configuration.maxInboundPayloadBytes = blockSize + 16
        configuration.subscriptions = [("bench/ota/\(index)/data", 0)]
        let client = try MQTTClient(configuration: configuration, logger: logger)
        client.start()
        subscribers.append(client)
    }
    var publisherConfiguration = MQTTClient.Configuration(clientID: "ota-baseline-pub")
    publisherConfiguration.port = port
    publisherConfiguration.cleanSession = true
    let publisher = try MQTTClient(configuration: publisherConfiguration, logger: logger)
    publisher.start()
    while !publisher.isConnected || subscribers.contains(where: { !$0.isConnected }) { usleep(10_000) }
    usleep(500_000)  // Subscriptions acknowledged.
    let received = Mutex<[Int]>([Int](repeating: 0, count: vehicles))
    let receiving = Atomic<Bool>(true)
    let listeners = subscribers
    let receiver = Thread {
        var batch: [InboundMessage] = []
        while receiving.load(ordering: .relaxed) {
            var any = false
            for (index, client) in listeners.enumerated() {
                batch.removeAll(keepingCapacity: true)
                if client.inbound.drain(into: &batch, max: 256, deadlineNanos: 0) > 0 {
                    any = true
                    let total = batch.reduce(0) { $0 + $1.payload.count - 16 }
                    received.withLock { $0[index] += total }
                }
            }
            if !any { usleep(200) }
        }
    }
    receiver.start()
    let unwritten = Atomic<Int>(0)
    var payload = [UInt8](repeating: 0xA5, count: blockSize + 16)
    let started = monotonicNanos()
    let topics = (0..<vehicles).map { "bench/ota/\($0)/data" }
    for block in 0..<blocks {
        let length = min(blockSize, bytes - block * blockSize)
        payload[8] = UInt8(truncatingIfNeeded: block >> 24)
        payload[11] = UInt8(truncatingIfNeeded: block)
        for topic in topics {
            while unwritten.load(ordering: .relaxed) >= 64 { usleep(100) }
            unwritten.wrappingAdd(1, ordering: .relaxed)
            try publisher.publish(topic: topic, payload: payload[0..<(length + 16)], qos: 0) { _ in
                unwritten.wrappingSubtract(1, ordering: .relaxed)
            }
        }
    }
    let deadline = monotonicNanos() + 300_000_000_000
    while received.withLock({ $0.contains { $0 < bytes } }) && monotonicNanos() < deadline { usleep(1000) }
    let seconds = Double(monotonicNanos() - started) / 1e9
    receiving.store(false, ordering: .relaxed)
    let complete = received.withLock { $0.count { $0 >= bytes } }
    print(
        String(
            format: "broker_alone vehicles=%d complete=%d bytes_each=%d seconds=%.2f mib_per_s=%.1f", vehicles, complete,
            bytes, seconds, Double(vehicles * bytes) / 1_048_576 / seconds))
    publisher.stop()
    for client in subscribers { client.stop() }
case "ingest":
    var load = IngestLoad.Options()
    load.port = number("port", default: 1883)
    load.devices = number("devices", default: 1000)
    load.waterPercent = number("water-pct", default: 20)
    load.qos = Int32(number("qos", default: 1))
    load.connections = max(1, number("connections", default: 4))
    load.window = max(1, number("window", default: 1000))
    load.rate = Double(options["rate"] ?? "0") ?? 0
    load.messages = number("messages", default: 200_000)
    load.durationS = Double(options["duration"] ?? "0") ?? 0
    load.database = options["db"]
    load.baseline = options["baseline"] == "1"
    load.gatewayPID = options["gateway-pid"].flatMap { Int32($0) }
    load.sampleEveryS = Double(options["sample-every"] ?? "0") ?? 0
    load.label = options["label"] ?? ""
    load.settleS = Double(options["settle-s"] ?? "5") ?? 5
    load.excludeDevice = options["exclude-device"]
    guard load.baseline || load.database != nil else { fail("ingest needs --db FILE (gatewayd's store) or --baseline 1") }
    let result = try IngestLoad(options: load).run()
    let rate = Double(result.counted) / max(result.seconds, 0.001)
    var record: [(key: String, value: JSONValue)] = [
        ("label", .string(load.label)), ("mode", .string(load.baseline ? "broker_alone" : "gateway")),
        ("devices", .int(Int64(load.devices))), ("qos", .int(Int64(load.qos))),
        ("connections", .int(Int64(load.connections))), ("target_rate_msgs", .double(load.rate)),
        ("messages", .int(Int64(result.publishedMessages))), ("readings_published", .int(Int64(result.publishedReadings))),
        ("readings_counted", .int(Int64(result.counted))),
        ("readings_lost", .int(Int64(result.publishedReadings - result.counted))),
        ("seconds", .double(result.seconds)), ("publish_seconds", .double(result.publishSeconds)),
        ("readings_per_s", .double(rate.rounded())),
        ("messages_per_s", .double((Double(result.publishedMessages) / max(result.seconds, 0.001)).rounded())),
        ("latency_ms_p50", .double(result.latencyMs.p50)), ("latency_ms_p99", .double(result.latencyMs.p99)),
        ("latency_ms_p999", .double(result.latencyMs.p999)), ("latency_ms_max", .double(result.latencyMs.max)),
    ]
    if let cpu = result.cpuSeconds {
        record.append(("gatewayd_cpu_s", .double(cpu)))
        record.append(("cpu_s_per_million_readings", .double(result.counted > 0 ? cpu / (Double(result.counted) / 1e6) : 0)))
    }
    if let rss = result.peakRSSMB { record.append(("gatewayd_peak_rss_mb", .double(rss))) }
    if let fds = result.openFDs { record.append(("gatewayd_fds", .int(Int64(fds)))) }
    if let size = result.databaseMB { record.append(("db_mb", .double(size))) }
    let json = JSONValue.object(JSONObject(record))
    print(
        record.map { member in
            switch member.value {
            case .double(let value): "\(member.key)=\(String(format: value == value.rounded() ? "%.0f" : "%.2f", value))"
            case .string(let text): "\(member.key)=\(text.isEmpty ? "-" : text)"
            default: "\(member.key)=\(member.value.serialized())"
            }
        }.joined(separator: " "))
    if let out = options["json-out"] {
        let line = json.serialized() + "\n"
        if let handle = FileHandle(forWritingAtPath: out) {
            handle.seekToEndOfFile()
            handle.write(Data(line.utf8))
            handle.closeFile()
        } else {
            FileManager.default.createFile(atPath: out, contents: Data(line.utf8))
        }
    }
    if result.counted < result.publishedReadings, options["allow-loss"] != "1" {
        FileHandle.standardError.write(
            Data("gwbench: \(result.publishedReadings - result.counted) readings were published and not counted\n".utf8))
        exit(1)
    }
case "chart":
    try Chart.write(results: option("in"), to: option("out"))
default:
    fail(usage)
}
