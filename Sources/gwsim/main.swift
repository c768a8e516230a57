import Foundation
import Logging
import MQTT
import Synchronization

/// gwsim: a simulated fleet of OBD-II vehicles and flood gauges publishing to a broker.
let usage = """
    usage: gwsim [options]
      --host H            broker host (127.0.0.1)
      --port P            broker port (1883)
      --vehicles N        simulated vehicles (20)
      --sensors M         simulated water sensors (5)
      --rate R            messages per second in total, 0 = as fast as possible (50)
      --duration S        stop after S seconds, 0 = run until Ctrl-C (0)
      --messages N        stop after N data messages (0 = no limit)
      --qos Q             0 or 1 (1)
      --connections C     MQTT connections to spread devices over (2)
      --window W          unacknowledged QoS 1 publishes per connection (200)
      --bad-every K       every K-th message is malformed, to exercise rejects (0 = never)
      --seed S            random seed (1)
      --client-prefix X   MQTT client id prefix (gwsim)
      --gps-every K       every K-th vehicle message is a GPS position (0 = none)
      --center LAT,LON    where the simulated fleet drives (3.1390,101.6869)
      --flood-demo        the first gauge gets a downpour from 5 s to 45 s (alarm, advisories, all-clear)
      --print-sites       print the sensors section of gatewayd's config for the simulated gauges, exit
      --quiet             no progress lines

    OTA vehicles (each on its own connection, implementing Firmware-Protocols/ota.md; no telemetry):
      --ota-vehicles N        run N OTA vehicles, VINs 1TGSV000000000001 upwards
      --ota-dir DIR           per-vehicle flash: installed image, record, partial downloads (required)
      --ota-trusted-key HEX   an operator public key provisioned at manufacture (repeat for more)
      --ota-threshold K       valid signatures needed (1)
      --ota-hardware H        hardware id (tgu-1)
      --ota-firmware FILE     image each vehicle is provisioned with (default: a 64 KiB test image)
      --ota-version V         its version (1.0.0)
      --ota-counter N         its release counter (1)
      --ota-fail-rate P       share of installs that fail, 0..1 (0)
      --ota-disconnect-at F   each vehicle drops its connection once at this share of a download (0 = never)
      --ota-requests K        block requests (of up to 32 blocks) kept in flight (2)
      --ota-vin-offset K      number the VINs from K+1, to split a fleet over processes (0)
      --ota-install-ms MS     how long an install takes (200)

    At the end gwsim prints one line: sent=<messages> readings=<readings> acked=<acks> ...
    """

struct Options {
    var host = "127.0.0.1"
    var port = 1883
    var vehicles = 20
    var sensors = 5
    var rate = 50.0
    var duration = 0.0
    var messages = 0
    var qos: Int32 = 1
    var connections = 2
    var window = 200
    var badEvery = 0
    var seed: UInt64 = 1
    var clientPrefix = "gwsim"
    var quiet = false
    var gpsEvery = 0
    var map = CityMap()
    var printSites = false
    var floodDemo = false
    var ota = OTAOptions()
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = Array(CommandLine.arguments.dropFirst())[...]
    func value(_ name: String) -> String {
        guard let next = arguments.popFirst() else {
            FileHandle.standardError.write(Data("gwsim: \(name) needs a value\n".utf8))
            exit(64)
        }
        return next
    }
    func number<T: LosslessStringConvertible>(_ name: String) -> T {
        let text = value(name)
        guard let parsed = T(text) else {
            FileHandle.standardError.write(Data("gwsim: \(name) must be a number, got \(text)\n".utf8))
            exit(64)
        }
        return parsed
    }
    while let argument = arguments.popFirst() {
        switch argument {
        case "--host": options.host = value(argument)
        case "--port": options.port = number(argument)
        case "--vehicles": options.vehicles = number(argument)
        case "--sensors": options.sensors = number(argument)
        case "--rate": options.rate = number(argument)
        case "--duration": options.duration = number(argument)
        case "--messages": options.messages = number(argument)
        case "--qos": options.qos = number(argument)
        case "--connections": options.connections = max(1, number(argument))
        case "--window": options.window = max(1, number(argument))
        case "--bad-every": options.badEvery = number(argument)
        case "--seed": options.seed = number(argument)
        case "--client-prefix": options.clientPrefix = value(argument)
        case "--quiet": options.quiet = true
        case "--gps-every": options.gpsEvery = number(argument)
        case "--print-sites": options.printSites = true
        case "--flood-demo": options.floodDemo = true
        case "--ota-vehicles": options.ota.vehicles = number(argument)
        case "--ota-dir": options.ota.directory = value(argument)
        case "--ota-trusted-key": options.ota.trustedKeys.append(value(argument))
        case "--ota-threshold": options.ota.threshold = number(argument)
        case "--ota-hardware": options.ota.hardwareID = value(argument)
        case "--ota-firmware": options.ota.firmwareFile = value(argument)
        case "--ota-version": options.ota.version = value(argument)
        case "--ota-counter": options.ota.counter = number(argument)
        case "--ota-fail-rate": options.ota.failRate = number(argument)
        case "--ota-disconnect-at": options.ota.disconnectAt = number(argument)
        case "--ota-requests": options.ota.requestsInFlight = max(1, number(argument))
        case "--ota-vin-offset": options.ota.vinOffset = number(argument)
        case "--ota-install-ms": options.ota.installMs = number(argument)
        case "--center":
            let parts = value(argument).split(separator: ",").compactMap { Double($0) }
            guard parts.count == 2, (-90...90).contains(parts[0]), (-180...180).contains(parts[1]) else {
                FileHandle.standardError.write(Data("gwsim: --center takes LAT,LON\n".utf8))
                exit(64)
            }
            options.map.centerLat = parts[0]
            options.map.centerLon = parts[1]
        case "--help", "-h":
            print(usage)
            exit(0)
        default:
            FileHandle.standardError.write(Data("gwsim: unknown option \(argument)\n\(usage)".utf8))
            exit(64)
        }
    }
    guard options.qos == 0 || options.qos == 1 else {
        FileHandle.standardError.write(Data("gwsim: --qos must be 0 or 1\n".utf8))
        exit(64)
    }
    guard options.vehicles + options.sensors > 0 || options.ota.vehicles > 0 else {
        FileHandle.standardError.write(Data("gwsim: nothing to simulate (--vehicles 0 --sensors 0)\n".utf8))
        exit(64)
    }
    return options
}

/// Counts acknowledgements per connection, so the publisher can keep a bounded window.
final class Window: Sendable {
    let outstanding = Atomic<Int>(0)
    let acked = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
}

let options = parseOptions()
if options.printSites {
    print(options.map.sitesJSON(sensors: options.sensors))
    exit(0)
}
let logger = Logger(level: .warning)

let stopFlag = Atomic<Bool>(false)
signal(SIGINT, SIG_IGN)
signal(SIGTERM, SIG_IGN)
let signalQueue = DispatchQueue(label: "signals")
let signalSources = [SIGINT, SIGTERM].map { number in
    let source = DispatchSource.makeSignalSource(signal: number, queue: signalQueue)
    source.setEventHandler { stopFlag.store(true, ordering: .relaxed) }
    source.resume()
    return source
}

/// The publishing loop. A class so that its state is not MainActor-isolated top-level state.
final class Simulator {
    let options: Options
    var vehicles: [VehicleModel]
    var sensors: [WaterSensorModel]
    var random: SplitMix64
    var clients: [MQTTClient] = []
    var windows: [Window] = []
    var sent = 0
    var readingsSent = 0
    var badSent = 0
    var publishErrors = 0

    init(options: Options) {
        self.options = options
        random = SplitMix64(state: options.seed)
        var random = self.random
        vehicles = (0..<options.vehicles).map { VehicleModel(index: $0, random: &random) }
        sensors = (0..<options.sensors).map { WaterSensorModel(index: $0, random: &random) }
        if options.floodDemo, !sensors.isEmpty { sensors[0].demoStorm = true }
        self.random = random
    }

    func connect() {
        for index in 0..<options.connections {
            var configuration = MQTTClient.Configuration(clientID: "\(options.clientPrefix)-\(getpid())-\(index)")
            configuration.host = options.host
            configuration.port = options.port
            configuration.cleanSession = true
            configuration.maxInflightMessages = UInt32(options.window)
            do {
                let client = try MQTTClient(configuration: configuration, logger: logger)
                client.start()
                clients.append(client)
                windows.append(Window())
            } catch {
                FileHandle.standardError.write(Data("gwsim: \(error)\n".utf8))
                exit(1)
            }
        }

    }

    func waitForConnections() {
        // Wait for every connection before publishing (publishing while disconnected fails).
        let connectDeadline = Date().addingTimeInterval(15)
        while clients.contains(where: { !$0.isConnected }) {
            if Date() > connectDeadline {
                FileHandle.standardError.write(
                    Data("gwsim: could not connect to \(options.host):\(options.port) within 15 s\n".utf8))
                exit(1)
            }
            usleep(10_000)
        }

    }

    func wallMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func publish(device: Int, topic: String, payload: String) -> Bool {
        let connection = device % clients.count
        let window = windows[connection]
        let qos = options.qos
        if options.qos == 1 {
            while window.outstanding.load(ordering: .relaxed) >= options.window {
                if stopFlag.load(ordering: .relaxed) { return false }
                usleep(100)
            }
            window.outstanding.add(1, ordering: .relaxed)
        }
        while true {
            do {
                try clients[connection].publish(topic: topic, payload: Array(payload.utf8), qos: options.qos) {
                    result in
                    if qos == 1 { window.outstanding.subtract(1, ordering: .relaxed) }
                    switch result {
                    case .success: window.acked.add(1, ordering: .relaxed)
                    case .failure: window.failed.add(1, ordering: .relaxed)
                    }
                }
                return true
            } catch {
                // Not connected right now: wait for the client's reconnect, then try again.
                publishErrors += 1
                if stopFlag.load(ordering: .relaxed) {
                    if options.qos == 1 { window.outstanding.subtract(1, ordering: .relaxed) }
                    return false
                }
                usleep(50_000)
            }
        }
    }

    func run() {
        let deviceCount = vehicles.count + sensors.count
        var lastDeviceTs = [Int64](repeating: 0, count: deviceCount)
        let started = Date()
        var lastProgress = started
        var nextDevice = 0
        var simulatedTime = [Double](repeating: 0, count: deviceCount)

        outer: while !stopFlag.load(ordering: .relaxed) {
            let elapsed = Date().timeIntervalSince(started)
            if options.duration > 0 && elapsed >= options.duration { break }
            let due = options.rate > 0 ? Int(elapsed * options.rate) - sent : 256
            if due <= 0 {
                usleep(1000)
                continue
            }
            for _ in 0..<due {
                if options.messages > 0 && sent >= options.messages { break outer }
                let device = nextDevice
                nextDevice = (nextDevice + 1) % deviceCount
                // Each device advances its own simulated clock by the real time between its turns.
                let now = Date().timeIntervalSince(started)
                let step = max(0.001, now - simulatedTime[device])
                simulatedTime[device] = now
                var ts = wallMs()
                if ts <= lastDeviceTs[device] { ts = lastDeviceTs[device] + 1 }
                lastDeviceTs[device] = ts
                let bad = options.badEvery > 0 && (sent + 1) % options.badEvery == 0
                if device < vehicles.count {
                    if !vehicles[device].helloSent {
                        _ = publish(
                            device: device, topic: "v1/obd/\(vehicles[device].vin)/hello",
                            payload: vehicles[device].helloJSON)
                        vehicles[device].helloSent = true
                    }
                    vehicles[device].step(seconds: step, random: &random)
                    vehicles[device].seq &+= 1
                    let vin = vehicles[device].vin
                    if bad {
                        _ = publish(
                            device: device, topic: "v1/obd/\(vin)/pids", payload: "{\"ts\":\(ts),\"seq\":\"oops\"}")
                        badSent += 1
                    } else if options.gpsEvery > 0 && Int(vehicles[device].seq) % options.gpsEvery == 0 {
                        guard
                            publish(
                                device: device, topic: "v1/obd/\(vin)/gps",
                                payload: vehicles[device].gpsJSON(ts: ts, map: options.map))
                        else { break outer }
                        readingsSent += 4
                    } else if !vehicles[device].troubleCodes.isEmpty && vehicles[device].seq % 100 == 0 {
                        guard
                            publish(
                                device: device, topic: "v1/obd/\(vin)/dtc", payload: vehicles[device].dtcJSON(ts: ts))
                        else { break outer }
                    } else {
                        guard
                            publish(
                                device: device, topic: "v1/obd/\(vin)/pids",
                                payload: vehicles[device].pidsJSON(ts: ts, random: &random))
                        else { break outer }
                        readingsSent += vehicles[device].readingsPerMessage
                    }
                } else {
                    let index = device - vehicles.count
                    sensors[index].step(seconds: step, random: &random)
                    sensors[index].seq &+= 1
                    let topic = "v1/water/\(sensors[index].id)/level"
                    if bad {
                        _ = publish(
                            device: device, topic: topic,
                            payload: "{\"ts\":\(ts),\"seq\":\(sensors[index].seq),\"level_cm\":99999}")
                        badSent += 1
                    } else {
                        guard publish(device: device, topic: topic, payload: sensors[index].levelJSON(ts: ts)) else {
                            break outer
                        }
                        readingsSent += sensors[index].readingsPerMessage
                    }
                }
                sent += 1
            }
            if !options.quiet && Date().timeIntervalSince(lastProgress) >= 5 {
                lastProgress = Date()
                let seconds = lastProgress.timeIntervalSince(started)
                print("gwsim: sent=\(sent) readings=\(readingsSent) rate=\(Int(Double(sent) / seconds))/s")
            }
        }

        // Wait (bounded) for outstanding acknowledgements so the summary counts what the broker took.
        let drainDeadline = Date().addingTimeInterval(30)
        while options.qos == 1 && windows.contains(where: { $0.outstanding.load(ordering: .relaxed) > 0 })
            && Date() < drainDeadline
        {
            usleep(1000)
        }
        let seconds = Date().timeIntervalSince(started)
        let acked = windows.reduce(0) { $0 + $1.acked.load(ordering: .relaxed) }
        for client in clients { client.stop() }
        print(
            "sent=\(sent) readings=\(readingsSent) bad=\(badSent) acked=\(acked) publish_retries=\(publishErrors)"
                + " seconds=\(String(format: "%.2f", seconds)) msg_per_s=\(Int(Double(sent) / max(seconds, 0.001)))")
    }
}

if options.ota.vehicles > 0 {
    let fleet = OTAFleet()
    exit(
        fleet.run(
            options: options.ota, host: options.host, port: options.port, duration: options.duration,
            shouldStop: { stopFlag.load(ordering: .relaxed) }))
}

let simulator = Simulator(options: options)
simulator.connect()
simulator.waitForConnections()
simulator.run()
