import Foundation
import Logging
import MQTT
import SQLite
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

enum HarnessError: Error, CustomStringConvertible {
    case notFound(String)
    case timeout(String)
    case exited(String, Int32, String)

    var description: String {
        switch self {
        case .notFound(let what): "not found: \(what)"
        case .timeout(let what): "timed out waiting for \(what)"
        case .exited(let what, let code, let log): "\(what) exited with \(code); log:\n\(log)"
        }
    }
}

/// A temporary directory per test, removed at the end.
final class Scratch: @unchecked Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "gw-it-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit {
        if ProcessInfo.processInfo.environment["KEEP_SCRATCH"] == nil {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// Runs a tool to completion; returns its exit status and everything it printed.
func runTool(
    _ executable: String, _ arguments: [String], in scratch: Scratch, environment: [String: String] = [:]
) throws -> (status: Int32, output: String) {
    let name = URL(fileURLWithPath: executable).lastPathComponent
    let child = try ChildProcess(
        name: name, executable: executable, arguments: arguments,
        logPath: scratch.file("\(name)-\(UUID().uuidString.prefix(8)).out"), environment: environment)
    child.waitUntilExit()
    return (child.terminationStatus, child.log)
}

/// True once gatewayd's telemetry connection (not its OTA one) has connected `count` times.
func telemetryConnected(_ log: String, count: Int = 1) -> Bool {
    log.split(separator: "\n").contains { line in
        line.contains("event=mqtt_connected") && !line.contains("component=ota") && line.contains("connection=\(count)")
    }
}

/// A free TCP port on 127.0.0.1, found by binding port 0 and reading what the kernel chose.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw HarnessError.notFound("a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// Polls `condition` until it holds or `seconds` pass.
func waitFor(_ what: String, seconds: Double = 20, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        usleep(20_000)
    }
    if try condition() { return }
    throw HarnessError.timeout(what)
}

/// A child process whose output goes to a log file (never a pipe that could fill and block it).
///
/// Spawned with `posix_spawn` and an empty signal mask: the test runner blocks signals in its
/// threads, and a child inheriting that mask (as with Foundation's `Process`) would never see
/// the SIGTERM a test sends it.
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    let logPath: String
    let name: String
    private var status: Int32?

    /// `environment` adds to (or replaces in) the test runner's environment.
    init(
        name: String, executable: String, arguments: [String], logPath: String, environment: [String: String] = [:]
    ) throws {
        self.name = name
        self.logPath = logPath
        let fd = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HarnessError.notFound("a writable \(logPath)") }
        defer { close(fd) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_adddup2(&actions, fd, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp =
            ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0)=\($1)") } + [nil]
        defer { envp.forEach { free($0) } }
        var child = pid_t()
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw HarnessError.exited("spawn \(executable)", rc, String(cString: strerror(rc))) }
        pid = child
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    var isRunning: Bool {
        guard status == nil else { return false }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, WNOHANG)
        if result == pid || result < 0 {
            status = Self.decode(raw, reaped: result == pid)
            return false
        }
        return true
    }

    /// The exit code, or 128 + the signal that ended it. Only meaningful once it has exited.
    var terminationStatus: Int32 {
        _ = isRunning
        return status ?? -1
    }

    func waitUntilExit() {
        guard status == nil else { return }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, 0)
        status = Self.decode(raw, reaped: result == pid)
    }

    private static func decode(_ raw: Int32, reaped: Bool) -> Int32 {
        guard reaped else { return -1 }
        let signal = raw & 0x7F
        return signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
    }

    /// Sends `signal` and waits for the exit; returns the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, seconds: Double = 20) -> Int32 {
        guard isRunning else { return terminationStatus }
        kill(pid, signal)
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning && Date() < deadline { usleep(5_000) }
        if isRunning {
            kill(pid, SIGKILL)
            waitUntilExit()
        }
        return terminationStatus
    }

    deinit { stop(signal: SIGKILL) }
}

/// A real mosquitto broker on a free loopback port.
final class Broker: @unchecked Sendable {
    let port: Int
    let child: ChildProcess

    static func executable() throws -> String {
        for candidate in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw HarnessError.notFound("mosquitto (apt-get install mosquitto)")
    }

    /// `tls`: a second listener with that server certificate, on `tlsPort`.
    let tlsPort: Int?

    /// `persistence`: the broker saves sessions and queued messages in the scratch folder and
    /// loads them at the next start under the same name (a broker restart loses nothing).
    init(
        scratch: Scratch, name: String = "mosquitto", port fixedPort: Int? = nil, tls: TestCertificates? = nil,
        persistence: Bool = false
    ) throws {
        port = try fixedPort ?? freeLoopbackPort()
        tlsPort = try tls.map { _ in try freeLoopbackPort() }
        let config = scratch.file("\(name).conf")
        var tlsListener = ""
        if let tls, let tlsPort {
            tlsListener = """
                listener \(tlsPort) 127.0.0.1
                cafile \(tls.caFile)
                certfile \(tls.serverCert)
                keyfile \(tls.serverKey)
                allow_anonymous true

                """
        }
        try """
        per_listener_settings false
        \(tlsListener)listener \(port) 127.0.0.1
        allow_anonymous true
        \(persistence ? "persistence true\npersistence_location \(scratch.path)/\npersistence_file \(name).db" : "persistence false")
        max_queued_messages 100000
        max_inflight_messages 100
        log_dest stdout
        log_type error
        log_type warning
        log_type notice
        """.write(toFile: config, atomically: false, encoding: .utf8)
        child = try ChildProcess(
            name: name, executable: try Self.executable(), arguments: ["-c", config],
            logPath: scratch.file("\(name).log"))
        try waitFor("mosquitto on port \(port)", seconds: 10) { [child] in
            guard child.isRunning else {
                throw HarnessError.exited("mosquitto", child.terminationStatus, child.log)
            }
            return canConnect(port: port)
        }
    }
}

/// Where `swift test` put the package's executables.
func binary(_ name: String) throws -> String {
    var candidates: [URL] = []
    let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    candidates.append(argv0.deletingLastPathComponent())
    candidates.append(argv0.deletingLastPathComponent().deletingLastPathComponent())
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    candidates.append(root.appendingPathComponent(".build/debug"))
    for directory in candidates {
        let path = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw HarnessError.notFound("\(name) in \(candidates.map(\.path)); run swift build first")
}

/// gatewayd started from the build directory with a generated configuration.
final class GatewayProcess: @unchecked Sendable {
    let scratch: Scratch
    let configPath: String
    let databasePath: String
    /// The REST API's port on loopback.
    let httpPort: Int
    private(set) var child: ChildProcess?
    private var starts = 0
    /// Added to gatewayd's environment at the next start (LD_PRELOAD of libfaketime, say).
    var environment: [String: String] = [:]

    /// `store` adds keys to the store object; `extra` adds top-level sections (`"alerts": {...},`);
    /// `http` adds keys to the http object (the listener is always a free loopback port).
    init(
        scratch: Scratch, brokerPort: Int, broker: String? = nil, store: String = "", extra: String = "",
        http: String = "", gatewayID: String? = nil, databasePath: String? = nil
    ) throws {
        self.scratch = scratch
        configPath = scratch.file("gateway.json")
        self.databasePath = databasePath ?? scratch.file("gateway.db")
        httpPort = try freeLoopbackPort()
        // Tests stream thousands of messages per device: the per-device limit is off unless a
        // test sets its own limits.
        let limits = extra.contains(#""limits""#) ? "" : #""limits": {"device_rate_per_s": 100000, "device_burst": 1000000},"#
        try """
        {
          "gateway_id": "\(gatewayID ?? "it-\(brokerPort)")", \(limits) \(extra)
          "http": {"listen": "127.0.0.1:\(httpPort)"\(http)},
          "broker": \(broker ?? #"{"host": "127.0.0.1", "port": \#(brokerPort)}"#),
          "store": {"path": "\(self.databasePath)", \(store.contains("capacity_readings") ? "" : #""capacity_readings": 100000, "#)"flush_interval_ms": 20\(store)},
          "log": {"level": "debug", "stats_interval_s": 1}
        }
        """.write(toFile: configPath, atomically: false, encoding: .utf8)
    }

    /// Starts gatewayd; waits for its broker connection unless `waitForConnection` is false.
    func start(waitForConnection: Bool = true) throws {
        starts += 1
        let child = try ChildProcess(
            name: "gatewayd", executable: try binary("gatewayd"), arguments: ["--config", configPath],
            logPath: scratch.file("gatewayd-\(starts).log"), environment: environment)
        self.child = child
        guard waitForConnection else { return }
        try waitFor("gatewayd to connect") {
            guard child.isRunning else {
                throw HarnessError.exited("gatewayd", child.terminationStatus, child.log)
            }
            return telemetryConnected(child.log) && child.log.contains("event=http_listening")
        }
    }

    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        child?.stop(signal: signal) ?? 0
    }

    /// Runs gatewayd (from its next start) under libfaketime with the wall clock read from a
    /// file, the monotonic clock left alone; returns the file, to which a test writes an offset
    /// such as "+2h". libfaketime re-reads it at most once a second.
    func fakeWallClock() throws -> String {
        let clock = scratch.file("faketime.rc")
        try "+0".write(toFile: clock, atomically: true, encoding: .utf8)
        environment = [
            "LD_PRELOAD": FaultTests.faketime, "FAKETIME_TIMESTAMP_FILE": clock, "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        ]
        return clock
    }

    var log: String { child?.log ?? "" }

    /// A read-only connection, as an outside tool would open the file.
    func database() throws -> Database {
        try Database(path: databasePath, options: [.readOnly])
    }

    func count(_ sql: String) throws -> Int64 {
        try database().scalarInt(sql) ?? 0
    }
}

/// An in-process publisher on a real libmosquitto connection.
final class Publisher: @unchecked Sendable {
    let client: MQTTClient

    init(port: Int, id: String = "it-publisher-\(UUID().uuidString.prefix(6))") throws {
        var configuration = MQTTClient.Configuration(clientID: id)
        configuration.port = port
        configuration.cleanSession = true
        configuration.maxInflightMessages = 100
        client = try MQTTClient(configuration: configuration, logger: Logger(level: .error))
        client.start()
        try waitFor("publisher to connect", seconds: 10) { client.isConnected }
    }

    /// Blocks until acknowledged rather than suspending (see `sendBlocking`); async so that
    /// async tests keep calling it with `await`.
    func send(_ topic: String, _ payload: String, qos: Int32 = 1) async throws {
        try sendBlocking(topic, bytes: Array(payload.utf8), qos: qos)
    }

    func send(_ topic: String, bytes: [UInt8], qos: Int32 = 1) async throws {
        try sendBlocking(topic, bytes: bytes, qos: qos)
    }

    /// Publishes and blocks until the broker acknowledged, without suspending. A suspended test
    /// resumes only when the cooperative pool (two threads on 2 cores) has a thread free, and the
    /// suites' blocking waits keep it busy: under the full suite, 132 suspended sends took 115 s
    /// in `IngestTests.everyVectorEndsUpStoredOrRejected` (0.2 s alone) and timed it out under ASan.
    func sendBlocking(_ topic: String, bytes: [UInt8], qos: Int32 = 1) throws {
        let done = DispatchSemaphore(value: 0)
        let failed = Atomic<Bool>(false)
        try client.publish(topic: topic, payload: bytes, qos: qos) { result in
            if case .failure = result { failed.store(true, ordering: .relaxed) }
            done.signal()
        }
        guard done.wait(timeout: .now() + .seconds(30)) == .success, !failed.load(ordering: .relaxed) else {
            throw HarnessError.timeout("no acknowledgement for \(topic)")
        }
    }

    /// Publishes `count` QoS 1 messages pipelined (up to `window` unacknowledged at once), calling
    /// `before(index)` ahead of each; returns once the broker has acknowledged all of them.
    func stream(
        count: Int, window: Int = 100, before: (Int) -> Void = { _ in }, _ message: (Int) -> (String, String)
    ) throws {
        let outstanding = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        for index in 0..<count {
            before(index)
            while outstanding.load(ordering: .relaxed) >= window { usleep(100) }
            outstanding.add(1, ordering: .relaxed)
            let (topic, payload) = message(index)
            try client.publish(topic: topic, payload: Array(payload.utf8), qos: 1) { result in
                if case .failure = result { failures.add(1, ordering: .relaxed) }
                outstanding.subtract(1, ordering: .relaxed)
            }
        }
        try waitFor("acknowledgements") { outstanding.load(ordering: .relaxed) == 0 }
        guard failures.load(ordering: .relaxed) == 0 else {
            throw HarnessError.timeout("\(failures.load(ordering: .relaxed)) failed publishes")
        }
    }

    deinit { client.stop() }
}

/// An in-process subscriber on a real libmosquitto connection; messages are read off its inbound buffer.
final class Subscriber: @unchecked Sendable {
    let client: MQTTClient
    private var received: [InboundMessage] = []

    /// `persistentID`: a fixed client id with a persistent session, so the broker queues for it.
    init(
        port: Int, filter: String, tls: MQTTClient.Configuration.TLS? = nil, persistentID: String? = nil
    ) throws {
        var configuration = MQTTClient.Configuration(
            clientID: persistentID ?? "it-subscriber-\(UUID().uuidString.prefix(6))")
        configuration.port = port
        configuration.cleanSession = persistentID == nil
        configuration.tls = tls
        configuration.reconnectMaxMs = 500
        configuration.subscriptions = [(filter: filter, qos: 1)]
        client = try MQTTClient(configuration: configuration, logger: Logger(level: .error))
        client.start()
        try waitFor("subscriber to connect", seconds: 10) { client.isConnected }
    }

    /// Everything received so far, in order.
    func messages() -> [InboundMessage] {
        _ = client.inbound.drain(into: &received, max: 100_000, deadlineNanos: monotonicNanos())
        return received
    }

    /// Waits for a message on `topic` whose payload contains `text`.
    func waitForMessage(topic: String, containing text: String, seconds: Double = 10) throws -> InboundMessage {
        var found: InboundMessage?
        try waitFor("a message on \(topic) containing \(text)", seconds: seconds) {
            _ = client.inbound.drain(into: &received, max: 1000, deadlineNanos: monotonicNanos() + 10_000_000)
            found = received.first {
                $0.topic == topic && String(decoding: $0.payload, as: UTF8.self).contains(text)
            }
            return found != nil
        }
        return found!
    }

    deinit { client.stop() }
}

/// A throwaway CA and a server certificate for 127.0.0.1 (IP SAN only, no DNS name), made with
/// the openssl command line, for TLS tests against mosquitto.
struct TestCertificates {
    let caFile: String
    let serverCert: String
    let serverKey: String

    init(scratch: Scratch) throws {
        caFile = scratch.file("ca.crt")
        serverCert = scratch.file("server.crt")
        serverKey = scratch.file("server.key")
        let caKey = scratch.file("ca.key")
        let csr = scratch.file("server.csr")
        let extensions = scratch.file("server.ext")
        try "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n".write(
            toFile: extensions, atomically: false, encoding: .utf8)
        let commands: [[String]] = [
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", caKey,
                "-out", caFile, "-days", "2", "-subj", "/CN=telemetry-gateway test CA",
            ],
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", serverKey,
                "-out", csr, "-subj", "/CN=127.0.0.1",
            ],
            [
                "x509", "-req", "-in", csr, "-CA", caFile, "-CAkey", caKey, "-CAcreateserial", "-out", serverCert,
                "-days", "2", "-extfile", extensions,
            ],
        ]
        for arguments in commands {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw HarnessError.exited("openssl \(arguments[0])", process.terminationStatus, "")
            }
        }
        // mosquitto drops root privileges to its own user, which must still read the key.
        chmod(serverKey, 0o644)
        chmod(scratch.path, 0o755)
    }
}

/// The usual set-up of an end-to-end test: a broker, a running gatewayd connected to it, and a
/// publisher; all stopped when the value goes away.
struct LiveGateway {
    let scratch: Scratch
    let broker: Broker
    let gateway: GatewayProcess
    let publisher: Publisher

    init(store: String = "", extra: String = "", http: String = "") throws {
        scratch = try Scratch()
        broker = try Broker(scratch: scratch)
        gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port, store: store, extra: extra, http: http)
        try gateway.start()
        publisher = try Publisher(port: broker.port)
    }
}

/// The city's broker on loopback: TLS only, client certificate required, with the CA and
/// certificates made by `Deploy/make-certs.sh` (the same script the quick start uses).
final class UpstreamBroker: @unchecked Sendable {
    let port: Int
    let certificates: String
    let child: ChildProcess
    let scratch: Scratch

    static func makeCertificates(in directory: String, gatewayID: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = root.appendingPathComponent("Deploy/make-certs.sh").path
        let make = try ChildProcess(
            name: "make-certs", executable: "/bin/bash", arguments: [script, directory, "0", gatewayID],
            logPath: directory + ".log")
        make.waitUntilExit()
        guard make.terminationStatus == 0 else {
            throw HarnessError.exited("make-certs.sh", make.terminationStatus, make.log)
        }
    }

    /// `persistence`: keep sessions and queued messages across a clean restart (SIGTERM).
    /// `name` tells apart several brokers (the nodes of a failover list) in one scratch folder;
    /// they share its certificates.
    init(
        scratch: Scratch, gatewayID: String, port fixedPort: Int? = nil, persistence: Bool = false,
        name: String = "upstream"
    ) throws {
        self.scratch = scratch
        certificates = scratch.file("certs")
        if !FileManager.default.fileExists(atPath: certificates + "/ca.crt") {
            try Self.makeCertificates(in: certificates, gatewayID: gatewayID)
        }
        port = try fixedPort ?? freeLoopbackPort()
        let config = scratch.file("\(name).conf")
        try """
        per_listener_settings true
        persistence \(persistence)
        persistence_location \(scratch.path)/
        persistence_file \(name).db
        autosave_interval 1
        listener \(port) 127.0.0.1
        cafile \(certificates)/ca.crt
        certfile \(certificates)/server.crt
        keyfile \(certificates)/server.key
        require_certificate true
        use_identity_as_username true
        tls_version tlsv1.2
        allow_anonymous false
        log_dest stdout
        """.write(toFile: config, atomically: false, encoding: .utf8)
        chmod(scratch.path, 0o777)
        child = try ChildProcess(
            name: name, executable: try Broker.executable(), arguments: ["-c", config],
            logPath: scratch.file("\(name)-\(UUID().uuidString.prefix(4)).log"))
        let port = port
        try waitFor("upstream mosquitto on port \(port)", seconds: 10) { [child] in
            guard child.isRunning else { throw HarnessError.exited("mosquitto", child.terminationStatus, child.log) }
            return canConnect(port: port)
        }
    }

    /// The TLS settings of a client holding the gateway's certificate.
    var clientTLS: MQTTClient.Configuration.TLS {
        .init(
            caFile: certificates + "/ca.crt", certFile: certificates + "/client.crt",
            keyFile: certificates + "/client.key")
    }

    /// gatewayd's `upstream` section for this broker.
    func gatewaySection(host: String = "127.0.0.1", cert: String = "client", ca: String? = nil, extra: String = "")
        -> String
    {
        #""upstream": {"host": "\#(host)", "port": \#(port), "max_rate_msgs_per_s": 1000, "status_interval_s": 1, "tls": {"ca_file": "\#(ca ?? certificates + "/ca.crt")", "cert_file": "\#(certificates)/\#(cert).crt", "key_file": "\#(certificates)/\#(cert).key"}\#(extra)},"#
    }
}
