import Foundation
import Logging
import MQTT
import SQLite
import Synchronization
import Telemetry

/// The ingest load generator and its measurement, for one configuration:
///
/// - publishes realistic OBD `pids` (16–17 PIDs, 18 readings) and water `level` messages (2
///   readings) from N devices over C libmosquitto connections, as fast as the window allows or at
///   a fixed rate, QoS 0 or 1, each message's `ts` and `seq` written into a reused buffer;
/// - counts what arrives where it counts: readings **committed in the SQLite file** (polled every
///   millisecond on a read-only connection), or, for the broker-alone baseline, readings received
///   by a subscriber that only counts;
/// - latency publish → committed is count-based: for each message, the time until the store
///   holds as many readings as had been published up to and including it (exact when commits
///   keep publish order, which one broker connection into one ingest thread does);
/// - gatewayd's CPU and peak RSS from /proc, and the file size.
final class IngestLoad: @unchecked Sendable {
    struct Options {
        var port = 1883
        var devices = 1000
        var waterPercent = 20
        var qos: Int32 = 1
        var connections = 4
        var window = 1000
        /// Messages per second in total; 0 = as fast as the window allows.
        var rate = 0.0
        var messages = 200_000
        /// With a rate: run this long instead of a message count.
        var durationS = 0.0
        var database: String?
        var baseline = false
        var gatewayPID: Int32?
        /// Soak: print a sample line this often (seconds); 0 = none.
        var sampleEveryS = 0.0
        var label = ""
        /// Give up waiting for the count after this long without progress.
        var settleS = 5.0
        /// Another client's device publishing into the same gateway (the soak's alarm gauge):
        /// its readings are left out of the count, or they would read as negative loss and,
        /// one a second, pull the count-based latency down over a long run.
        var excludeDevice: String?
    }

    /// One device's payload parts: everything but `ts` and `seq` is fixed per template.
    struct Device {
        var topic: String
        var suffix: [UInt8]
        var readings: Int
        var seq: Int64 = 0
    }

    static let baselinePrefix = "baseline/"
    let options: Options
    private(set) var devices: [Device] = []
    let published = Atomic<Int>(0)
    let publishedMessages = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    /// Per connection: (publish time, cumulative readings after the message) for every message.
    var samples: [[(UInt64, Int)]] = []
    /// The observer's (time, readings counted) whenever the count changed.
    var observed: [(UInt64, Int)] = []
    let observedLock = NSLock()
    /// Soak only: every 8th message's sample, taken by the per-interval sampler.
    var recent: [(UInt64, Int)] = []

    init(options: Options) throws {
        self.options = options
        let decoder = Decoder(configuration: .init())
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let waterEvery = options.waterPercent > 0 ? max(1, 100 / options.waterPercent) : Int.max
        for index in 0..<options.devices {
            let water = index % waterEvery == waterEvery - 1
            let topic: String
            let suffix: String
            if water {
                topic = "v1/water/bench-w\(index)/level"
                suffix = ",\"level_cm\":\(40 + index % 60).5,\"battery_v\":3.9\(index % 10)}"
            } else {
                let number = String(index)
                topic = "v1/obd/1TGBV" + String(repeating: "0", count: 12 - number.count) + number + "/pids"
                let speed = String(index % 90, radix: 16, uppercase: true)
                let two = speed.count == 1 ? "0" + speed : speed
                suffix =
                    ",\"pids\":{\"01\":\"00076504\",\"04\":\"4C\",\"05\":\"7B\",\"0B\":\"3A\",\"0C\":\"1F40\",\"0D\":\"\(two)\","
                    + "\"0F\":\"44\",\"10\":\"0BB8\",\"11\":\"33\",\"1F\":\"0258\",\"2F\":\"A0\",\"42\":\"35E8\","
                    + "\"46\":\"3C\",\"5C\":\"76\",\"5E\":\"0190\",\"A6\":\"0001E240\"}}"
            }
            let sample = "{\"ts\":\(now),\"seq\":1" + suffix
            guard case .success(let message) = decoder.decode(topic: topic, payload: Array(sample.utf8), nowMs: now),
                case .readings(_, _, _, let readings, _) = message
            else {
                throw BenchError("the \(water ? "water" : "OBD") template does not decode: \(sample)")
            }
            // The baseline publishes the same bytes under another prefix, so a gatewayd on the same
            // broker (or its persistent session, queued while it is down) never takes them.
            devices.append(
                Device(
                    topic: options.baseline ? Self.baselinePrefix + topic : topic, suffix: Array(suffix.utf8),
                    readings: readings.count))
        }
    }

    // MARK: - Run

    struct Result {
        var publishedMessages = 0
        var publishedReadings = 0
        var counted = 0
        var seconds = 0.0
        var publishSeconds = 0.0
        var latencyMs: (p50: Double, p99: Double, p999: Double, max: Double) = (0, 0, 0, 0)
        var cpuSeconds: Double?
        var peakRSSMB: Double?
        var databaseMB: Double?
        var openFDs: Int?
    }

    func run() throws -> Result {
        let logger = Logger(level: .error)
        var clients: [MQTTClient] = []
        for index in 0..<options.connections {
            var configuration = MQTTClient.Configuration(clientID: "gwbench-load-\(getpid())-\(index)")
            configuration.port = options.port
            configuration.cleanSession = true
            configuration.maxInflightMessages = UInt32(options.window)
            clients.append(try MQTTClient(configuration: configuration, logger: logger))
        }
        var subscriber: MQTTClient?
        if options.baseline {
            var configuration = MQTTClient.Configuration(clientID: "gwbench-count-\(getpid())")
            configuration.port = options.port
            configuration.cleanSession = true
            configuration.subscriptions = [
                (Self.baselinePrefix + "v1/obd/+/pids", options.qos), (Self.baselinePrefix + "v1/water/+/level", options.qos),
            ]
            configuration.inboundCapacity = 65_536
            subscriber = try MQTTClient(configuration: configuration, logger: logger)
            subscriber?.start()
        }
        for client in clients { client.start() }
        let deadline = monotonicNanos() + 15_000_000_000
        while clients.contains(where: { !$0.isConnected }) || subscriber?.isConnected == false {
            guard monotonicNanos() < deadline else { throw BenchError("could not connect to 127.0.0.1:\(options.port)") }
            usleep(10_000)
        }
        if subscriber != nil { usleep(300_000) }

        let database = try options.database.map { try Database(path: $0, options: [.readOnly]) }
        let startCount = try database.map { try committed($0) } ?? 0
        let cpuBefore = options.gatewayPID.flatMap(Self.cpuSeconds)
        samples = Array(repeating: [], count: options.connections)

        let counter = Thread { [self, subscriber] in
            if let subscriber {
                countReceived(subscriber)
            } else if let database {
                pollCommitted(database, start: startCount)
            }
        }
        counter.start()
        let started = monotonicNanos()
        let sampler = options.sampleEveryS > 0 ? Thread { [self] in soakSamples(started: started) } : nil
        sampler?.start()
        let group = DispatchGroup()
        for (index, client) in clients.enumerated() {
            group.enter()
            let thread = Thread { [self] in
                publish(connection: index, client: client, started: started)
                group.leave()
            }
            thread.start()
        }
        group.wait()
        let publishSeconds = Double(monotonicNanos() - started) / 1e9
        let expected = published.load(ordering: .relaxed)
        // Settled: everything counted, or no progress for `settleS`.
        var last = -1
        var lastChange = monotonicNanos()
        while true {
            let now = currentCount()
            if now >= expected { break }
            if now != last {
                last = now
                lastChange = monotonicNanos()
            } else if monotonicNanos() - lastChange > UInt64(options.settleS * 1e9) {
                break
            }
            usleep(1000)
        }
        stopping.store(true, ordering: .relaxed)
        while counter.isExecuting || sampler?.isExecuting == true { usleep(1000) }
        for client in clients { client.stop() }
        subscriber?.stop()

        var result = Result()
        result.publishedMessages = publishedMessages.load(ordering: .relaxed)
        result.publishedReadings = expected
        result.counted = currentCount()
        let lastCount = observed.last(where: { $0.1 <= expected })?.0 ?? monotonicNanos()
        result.seconds = Double(lastCount - started) / 1e9
        result.publishSeconds = publishSeconds
        result.latencyMs = latencies()
        if let pid = options.gatewayPID {
            if let before = cpuBefore, let after = Self.cpuSeconds(pid) { result.cpuSeconds = after - before }
            result.peakRSSMB = Self.status(pid, "VmHWM").map { Double($0) / 1024 }
            result.openFDs = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        }
        if let path = options.database {
            let sizes = [path, path + "-wal"].compactMap {
                (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? nil
            }
            result.databaseMB = Double(sizes.reduce(0, +)) / 1_048_576
        }
        return result
    }

    private func currentCount() -> Int {
        observedLock.lock()
        defer { observedLock.unlock() }
        return observed.last?.1 ?? 0
    }

    private func record(_ count: Int) {
        observedLock.lock()
        if observed.last?.1 != count { observed.append((monotonicNanos(), count)) }
        observedLock.unlock()
    }

    private func committed(_ database: Database) throws -> Int {
        guard let excluded = options.excludeDevice else {
            return Int(try database.scalarInt("SELECT next_seqno FROM rings WHERE name = 'readings'") ?? 0)
        }
        // One statement, so both numbers come from the same commit.
        let count = try database.statement(
            """
            SELECT (SELECT next_seqno FROM rings WHERE name = 'readings')
                - coalesce((SELECT readings FROM devices WHERE name = ?), 0)
            """)
        defer { count.reset() }
        count.bind(arguments: excluded)
        return try count.step() ? Int(count.int64(0)) : 0
    }

    private func pollCommitted(_ database: Database, start: Int) {
        while !stopping.load(ordering: .relaxed) {
            if let count = try? committed(database) { record(count - start) }
            usleep(1000)
        }
        if let count = try? committed(database) { record(count - start) }
    }

    private func countReceived(_ subscriber: MQTTClient) {
        var batch: [InboundMessage] = []
        var count = 0
        let obd = Array((Self.baselinePrefix + "v1/obd/").utf8)
        let obdReadings = devices.first { $0.topic.contains("v1/obd/") }?.readings ?? 0
        let waterReadings = devices.first { $0.topic.contains("v1/water/") }?.readings ?? 0
        while !stopping.load(ordering: .relaxed) {
            batch.removeAll(keepingCapacity: true)
            guard subscriber.inbound.drain(into: &batch, max: 4096, deadlineNanos: monotonicNanos() + 1_000_000) > 0
            else { continue }
            for message in batch {
                count += message.topic.utf8.starts(with: obd) ? obdReadings : waterReadings
            }
            record(count)
        }
    }

    /// Unacknowledged publishes of one connection (a class, so completions can hold it).
    final class Window: Sendable {
        let count = Atomic<Int>(0)
    }

    private func publish(connection: Int, client: MQTTClient, started: UInt64) {
        let window = Window()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1024)
        // This connection's devices, copied: each thread counts its own `seq`s (a shared array
        // mutated from several threads crashed at 100 000 devices).
        var mine = stride(from: connection, to: devices.count, by: options.connections).map { devices[$0] }
        guard !mine.isEmpty else { return }
        var next = 0
        var sent = 0
        let ratePerConnection = options.rate / Double(options.connections)
        let quota =
            options.durationS > 0 ? Int.max : options.messages / options.connections
            + (connection < options.messages % options.connections ? 1 : 0)
        var local: [(UInt64, Int)] = []
        if options.sampleEveryS == 0 { local.reserveCapacity(min(quota, 2_000_000)) }
        while sent < quota && !stopping.load(ordering: .relaxed) {
            let now = monotonicNanos()
            if options.durationS > 0, Double(now - started) / 1e9 >= options.durationS { break }
            if ratePerConnection > 0 {
                let due = Int(Double(now - started) / 1e9 * ratePerConnection)
                if sent >= due {
                    usleep(200)
                    continue
                }
            }
            while window.count.load(ordering: .relaxed) >= options.window { usleep(50) }
            let index = next
            next = (next + 1) % mine.count
            mine[index].seq += 1
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: #"{"ts":"#.utf8)
            appendDecimal(Int64(Date().timeIntervalSince1970 * 1000), to: &buffer)
            buffer.append(contentsOf: #","seq":"#.utf8)
            appendDecimal(mine[index].seq, to: &buffer)
            buffer.append(contentsOf: mine[index].suffix)
            window.count.wrappingAdd(1, ordering: .relaxed)
            let after = published.wrappingAdd(mine[index].readings, ordering: .relaxed).newValue
            let sentAt = monotonicNanos()
            do {
                try client.publish(topic: mine[index].topic, payload: buffer, qos: options.qos) { _ in
                    window.count.wrappingSubtract(1, ordering: .relaxed)
                }
            } catch {
                window.count.wrappingSubtract(1, ordering: .relaxed)
                published.wrappingSubtract(mine[index].readings, ordering: .relaxed)
                usleep(10_000)
                continue
            }
            publishedMessages.wrappingAdd(1, ordering: .relaxed)
            if options.sampleEveryS == 0 {
                local.append((sentAt, after))
            } else if sent % 8 == 0 {
                observedLock.lock()
                recent.append((sentAt, after))
                observedLock.unlock()
            }
            sent += 1
        }
        while window.count.load(ordering: .relaxed) > 0 { usleep(100) }
        mine.removeAll()
        observedLock.lock()
        samples[connection] = local
        observedLock.unlock()
    }

    /// Count-based latency: for each message, when the counted readings first reached the
    /// published total up to and including it.
    private func latencies() -> (Double, Double, Double, Double) {
        observedLock.lock()
        let observed = self.observed
        let all = samples.flatMap { $0 }
        observedLock.unlock()
        var values = Self.latencies(all, observed: observed).values
        values.sort()
        guard !values.isEmpty else { return (0, 0, 0, 0) }
        return (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 0.999), values.last!)
    }

    /// Milliseconds for the samples already counted; the others are returned to try later.
    static func latencies(_ samples: [(UInt64, Int)], observed: [(UInt64, Int)]) -> (
        values: [Double], pending: [(UInt64, Int)]
    ) {
        var values: [Double] = []
        var pending: [(UInt64, Int)] = []
        values.reserveCapacity(samples.count)
        for (sentAt, after) in samples {
            var low = 0
            var high = observed.count
            while low < high {
                let middle = (low + high) / 2
                if observed[middle].1 >= after { high = middle } else { low = middle + 1 }
            }
            guard low < observed.count else {
                pending.append((sentAt, after))
                continue
            }
            values.append(max(0, Double(Int64(observed[low].0) - Int64(sentAt)) / 1e6))
        }
        return (values, pending)
    }

    /// Soak: a line per interval with gatewayd's RSS and descriptors, the interval's rate, and the
    /// latency of the interval's messages (one in eight) that have been committed.
    private func soakSamples(started: UInt64) {
        var lastAt = started
        var lastCount = 0
        var pending: [(UInt64, Int)] = []
        while !stopping.load(ordering: .relaxed) {
            let wake = lastAt + UInt64(options.sampleEveryS * 1e9)
            while monotonicNanos() < wake && !stopping.load(ordering: .relaxed) { usleep(100_000) }
            if stopping.load(ordering: .relaxed) { break }
            let now = monotonicNanos()
            observedLock.lock()
            pending += recent
            recent.removeAll(keepingCapacity: true)
            // Only the newest observations are needed: older ones cannot answer newer samples.
            let observed = self.observed
            if self.observed.count > 100_000 { self.observed.removeFirst(self.observed.count - 10_000) }
            observedLock.unlock()
            let (values, rest) = Self.latencies(pending, observed: observed)
            pending = rest
            let sorted = values.sorted()
            let count = observed.last?.1 ?? 0
            let rate = Double(count - lastCount) / (Double(now - lastAt) / 1e9)
            var line = String(
                format: "soak minute=%.1f counted=%d readings_per_s=%.0f", Double(now - started) / 60e9, count, rate)
            if !sorted.isEmpty {
                line += String(
                    format: " latency_ms_p50=%.1f p99=%.1f max=%.1f", percentile(sorted, 0.5), percentile(sorted, 0.99),
                    sorted.last!)
            }
            if let pid = options.gatewayPID {
                let rss = Self.status(pid, "VmRSS").map { Double($0) / 1024 } ?? -1
                let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
                line += String(format: " gatewayd_rss_mb=%.1f gatewayd_fds=%d", rss, fds)
            }
            line += " backlog_readings=\(published.load(ordering: .relaxed) - count)"
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
            lastAt = now
            lastCount = count
        }
    }

    // MARK: - /proc

    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func status(_ pid: Int32, _ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}

func appendDecimal(_ value: Int64, to buffer: inout [UInt8]) {
    if value == 0 {
        buffer.append(UInt8(ascii: "0"))
        return
    }
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                 UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var count = 0
    var rest = value.magnitude
    withUnsafeMutableBytes(of: &digits) { raw in
        while rest > 0 {
            raw[count] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            count += 1
        }
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        for index in stride(from: count - 1, through: 0, by: -1) { buffer.append(raw[index]) }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
