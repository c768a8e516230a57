import Foundation
import Logging
import MQTT
import SQLite
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `Deploy/install.sh` into a throwaway root, then the installed broker configuration run by a
/// real mosquitto: devices enrolled with `gwctl device add` reach gatewayd over TLS and nothing
/// else; one device cannot speak for another or read another's OTA topics.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DeployTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let vinA = "1TGDA000000000001"
    static let vinB = "1TGDA000000000002"

    /// A root with the host's account files, as `useradd --prefix` needs them.
    static func makeRoot(_ scratch: Scratch) throws -> String {
        let root = scratch.file("root")
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        for name in ["passwd", "group", "shadow", "gshadow", "login.defs"] where access("/etc/" + name, F_OK) == 0 {
            try FileManager.default.copyItem(atPath: "/etc/" + name, toPath: root + "/etc/" + name)
        }
        return root
    }

    static func install(_ root: String, in scratch: Scratch, _ extra: [String] = []) throws -> (Int32, String) {
        let bin = (try binary("gatewayd") as NSString).deletingLastPathComponent
        return try runTool(
            "/bin/bash", [repository + "/Deploy/install.sh", "--root", root, "--bin", bin, "--gateway-id", "board-test"] + extra, in: scratch)
    }

    static func mode(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_mode & 0o7777) : -1
    }

    static func device(
        port: Int, ca: String, user: String?, password: String?, subscribe: String? = nil
    ) throws -> MQTTClient {
        var configuration = MQTTClient.Configuration(clientID: user ?? "anonymous-\(UUID().uuidString.prefix(4))")
        configuration.port = port
        configuration.username = user
        configuration.password = password
        configuration.cleanSession = true
        configuration.reconnectMaxMs = 500
        configuration.tls = .init(caFile: ca, certFile: nil, keyFile: nil)
        if let subscribe { configuration.subscriptions = [(filter: subscribe, qos: 1)] }
        let client = try MQTTClient(configuration: configuration, logger: Logger(level: .critical))
        client.start()
        return client
    }

    @Test func installEnrollAndIsolateDevices() async throws {
        let scratch = try Scratch()
        let root = try Self.makeRoot(scratch)
        let (status, output) = try Self.install(root, in: scratch)
        #expect(status == 0, "\(output)")

        // What the installer laid down, and with which permissions.
        let etc = root + "/etc/telemetry-gateway"
        #expect(Self.mode(etc) == 0o750)
        #expect(Self.mode(etc + "/gatewayd.json") == 0o640)
        #expect(Self.mode(etc + "/broker.password") == 0o640)
        #expect(Self.mode(root + "/etc/mosquitto/certs/telemetry-gateway-ca.key") == 0o600)
        #expect(Self.mode(root + "/var/lib/telemetry-gateway") == 0o750)
        #expect(Self.mode(root + "/usr/local/bin/gatewayd") == 0o755)
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("telemetry-gateway:") && passwd.contains("/usr/sbin/nologin"))
        let unit = try String(contentsOfFile: root + "/etc/systemd/system/gatewayd.service", encoding: .utf8)
        for line in [
            "User=telemetry-gateway", "ProtectSystem=strict", "ReadWritePaths=/var/lib/telemetry-gateway",
            "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "Restart=on-failure", "Type=notify",
            "WatchdogSec=",
        ] {
            #expect(unit.contains(line), "the unit lacks \(line)")
        }
        let config = try String(contentsOfFile: etc + "/gatewayd.json", encoding: .utf8)
        #expect(config.contains("\"board-test\""))

        // Idempotent: a second run changes no configuration, credential or certificate.
        let before = try [etc + "/gatewayd.json", etc + "/broker.password", etc + "/device-ca.crt"].map {
            try Data(contentsOf: URL(fileURLWithPath: $0))
        }
        let (again, againOutput) = try Self.install(root, in: scratch)
        #expect(again == 0, "\(againOutput)")
        let after = try [etc + "/gatewayd.json", etc + "/broker.password", etc + "/device-ca.crt"].map {
            try Data(contentsOf: URL(fileURLWithPath: $0))
        }
        #expect(before == after)
        #expect(access(root + "/usr/local/bin/gatewayd.previous", F_OK) != 0, "same binary: nothing to roll back to")

        // The installed broker configuration, run for real: paths moved into the root, ports free.
        let plainPort = try freeLoopbackPort()
        let tlsPort = try freeLoopbackPort()
        let pidFile = scratch.file("mosquitto.pid")
        var brokerConfig = try String(contentsOfFile: root + "/etc/mosquitto/conf.d/telemetry-gateway.conf", encoding: .utf8)
        #expect(brokerConfig.contains("listener 1883 127.0.0.1"), "the plaintext listener must be loopback only")
        brokerConfig = brokerConfig.replacingOccurrences(of: "/etc/mosquitto/", with: root + "/etc/mosquitto/")
            .replacingOccurrences(of: "persistence_location /var/lib/mosquitto/", with: "persistence_location \(scratch.path)/")
            .replacingOccurrences(of: "listener 1883 127.0.0.1", with: "listener \(plainPort) 127.0.0.1")
            .replacingOccurrences(of: "listener 8883", with: "listener \(tlsPort) 127.0.0.1")
        brokerConfig += "\nuser root\npid_file \(pidFile)\nlog_dest stdout\n"
        try brokerConfig.write(toFile: scratch.file("board-mosquitto.conf"), atomically: true, encoding: .utf8)
        let broker = try ChildProcess(
            name: "mosquitto", executable: try Broker.executable(), arguments: ["-c", scratch.file("board-mosquitto.conf")],
            logPath: scratch.file("board-mosquitto.log"))
        defer { _ = broker.stop() }
        try waitFor("the board's broker") { canConnect(port: tlsPort) && access(pidFile, F_OK) == 0 }

        // Enroll two vehicles and a gauge with gwctl, as an installer would.
        let files = [
            "--passwd", root + "/etc/mosquitto/telemetry-gateway.passwd", "--acl", root + "/etc/mosquitto/telemetry-gateway.acl",
            "--broker-pid", pidFile,
        ]
        func enroll(_ id: String) throws -> String {
            let (code, text) = try runTool(try binary("gwctl"), ["device", "add", id] + files, in: scratch)
            #expect(code == 0, "\(text)")
            #expect(text.contains("broker reloaded"), "\(text)")
            return try #require(text.split(separator: "\n").first { $0.hasPrefix("mqtt password: ") }?.dropFirst(15))
                .description
        }
        let passwordA = try enroll(Self.vinA)
        let passwordB = try enroll(Self.vinB)
        _ = try enroll("drain-7")
        let (listed, listing) = try runTool(try binary("gwctl"), ["device", "list"] + files, in: scratch)
        #expect(listed == 0 && listing.contains(Self.vinA) && listing.contains("drain-7") && listing.contains("3 device(s)"))
        let (dup, dupText) = try runTool(try binary("gwctl"), ["device", "add", Self.vinA] + files, in: scratch)
        #expect(dup != 0 && dupText.contains("already enrolled"))
        let (bad, badText) = try runTool(try binary("gwctl"), ["device", "add", "../etc"] + files, in: scratch)
        #expect(bad != 0 && badText.contains("not a device id"))

        // gatewayd with the installed configuration, on the broker's loopback listener.
        var gatewayConfig = config.replacingOccurrences(of: "\"port\": 1883", with: "\"port\": \(plainPort)")
            .replacingOccurrences(of: "/etc/telemetry-gateway/", with: etc + "/")
            .replacingOccurrences(of: "/var/lib/telemetry-gateway/", with: scratch.path + "/data/")
        let httpPort = try freeLoopbackPort()
        gatewayConfig = gatewayConfig.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(httpPort)")
        try gatewayConfig.write(toFile: scratch.file("board-gatewayd.json"), atomically: true, encoding: .utf8)
        let gateway = try ChildProcess(
            name: "gatewayd", executable: try binary("gatewayd"), arguments: ["--config", scratch.file("board-gatewayd.json")],
            logPath: scratch.file("board-gatewayd.log"))
        defer { _ = gateway.stop() }
        try waitFor("gatewayd on the board's broker") { telemetryConnected(gateway.log) }

        let ca = etc + "/device-ca.crt"
        let deviceA = try Self.device(port: tlsPort, ca: ca, user: Self.vinA, password: passwordA, subscribe: "v1/ota/#")
        let deviceB = try Self.device(port: tlsPort, ca: ca, user: Self.vinB, password: passwordB, subscribe: "v1/ota/#")
        defer {
            deviceA.stop()
            deviceB.stop()
        }
        try waitFor("both vehicles over TLS") { deviceA.isConnected && deviceB.isConnected }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // A speaks for itself, then tries to speak for B and for a gauge: only the first lands.
        try await deviceA.publishAndWait(
            topic: "v1/obd/\(Self.vinA)/pids", payload: Array(#"{"ts":\#(now),"seq":1,"pids":{"0D":"3C"}}"#.utf8))
        try await deviceA.publishAndWait(
            topic: "v1/obd/\(Self.vinB)/pids", payload: Array(#"{"ts":\#(now),"seq":1,"pids":{"0D":"50"}}"#.utf8))
        try await deviceA.publishAndWait(
            topic: "v1/water/drain-7/level", payload: Array(#"{"ts":\#(now),"seq":1,"level_cm":999}"#.utf8))
        try await deviceB.publishAndWait(
            topic: "v1/obd/\(Self.vinB)/pids", payload: Array(#"{"ts":\#(now),"seq":1,"pids":{"0D":"28"}}"#.utf8))
        let database = scratch.path + "/data/gateway.db"
        func count(_ sql: String) throws -> Int64 {
            try Database(path: database, options: [.readOnly]).scalarInt(sql) ?? 0
        }
        try waitFor("both vehicles' own readings") {
            try count("SELECT count(*) FROM readings_v") == 2
        }
        usleep(500_000)
        #expect(try count("SELECT count(*) FROM readings_v WHERE device = '\(Self.vinB)' AND value = 80") == 0)
        #expect(try count("SELECT count(*) FROM devices_v WHERE device = 'drain-7'") == 0)

        // OTA topics: the gateway's account writes offers; each vehicle sees only its own.
        let gatewayPassword = try String(contentsOfFile: etc + "/broker.password", encoding: .utf8)
            .trimmingCharacters(in: .newlines)
        var asGateway = MQTTClient.Configuration(clientID: "deploy-test-gatewayd")
        asGateway.port = plainPort
        asGateway.username = "gatewayd"
        asGateway.password = gatewayPassword
        asGateway.cleanSession = true
        let offerer = try MQTTClient(configuration: asGateway, logger: Logger(level: .critical))
        offerer.start()
        defer { offerer.stop() }
        try waitFor("the gateway account on loopback") { offerer.isConnected }
        try await offerer.publishAndWait(topic: "v1/ota/\(Self.vinA)/offer", payload: Array("for-A".utf8))
        try await offerer.publishAndWait(topic: "v1/ota/\(Self.vinB)/offer", payload: Array("for-B".utf8))
        // B also tries to send A a command as if it were the gateway.
        try await deviceB.publishAndWait(topic: "v1/ota/\(Self.vinA)/cmd", payload: Array("forged".utf8))
        usleep(800_000)
        var seenA: [InboundMessage] = []
        var seenB: [InboundMessage] = []
        _ = deviceA.inbound.drain(into: &seenA, max: 100, deadlineNanos: monotonicNanos())
        _ = deviceB.inbound.drain(into: &seenB, max: 100, deadlineNanos: monotonicNanos())
        #expect(seenA.map(\.topic) == ["v1/ota/\(Self.vinA)/offer"], "A saw \(seenA.map(\.topic))")
        #expect(seenB.map(\.topic) == ["v1/ota/\(Self.vinB)/offer"], "B saw \(seenB.map(\.topic))")

        // No credentials, a wrong password, or a removed device: no connection at all.
        let anonymous = try Self.device(port: tlsPort, ca: ca, user: nil, password: nil)
        let wrong = try Self.device(port: tlsPort, ca: ca, user: Self.vinA, password: "guess")
        defer {
            anonymous.stop()
            wrong.stop()
        }
        let (removed, removedText) = try runTool(try binary("gwctl"), ["device", "remove", Self.vinB] + files, in: scratch)
        #expect(removed == 0, "\(removedText)")
        let removedB = try Self.device(port: tlsPort, ca: ca, user: Self.vinB, password: passwordB)
        defer { removedB.stop() }
        usleep(2_000_000)
        #expect(!anonymous.isConnected)
        #expect(!wrong.isConnected)
        #expect(!removedB.isConnected)

        // Uninstall keeps configuration and data; --purge takes them and the user away.
        let (uninstalled, uninstallText) = try runTool(
            "/bin/bash", [Self.repository + "/Deploy/install.sh", "--root", root, "--uninstall"], in: scratch)
        #expect(uninstalled == 0, "\(uninstallText)")
        #expect(access(root + "/usr/local/bin/gatewayd", F_OK) != 0)
        #expect(access(root + "/etc/systemd/system/gatewayd.service", F_OK) != 0)
        #expect(access(etc + "/gatewayd.json", F_OK) == 0)
        let (purged, purgeText) = try runTool(
            "/bin/bash", [Self.repository + "/Deploy/install.sh", "--root", root, "--uninstall", "--purge"], in: scratch)
        #expect(purged == 0, "\(purgeText)")
        #expect(access(etc, F_OK) != 0)
        #expect(try !String(contentsOfFile: root + "/etc/passwd", encoding: .utf8).contains("telemetry-gateway:"))
    }

    /// An upgrade keeps the binaries it replaced; --rollback swaps them back.
    @Test func upgradeThenRollBack() throws {
        let scratch = try Scratch()
        let root = try Self.makeRoot(scratch)
        let (status, output) = try Self.install(root, in: scratch)
        #expect(status == 0, "\(output)")
        // A "new release": the same gatewayd with a byte appended is a different file.
        let newBin = scratch.file("new-bin")
        try FileManager.default.createDirectory(atPath: newBin, withIntermediateDirectories: true)
        for tool in ["gatewayd", "gwctl"] {
            var bytes = try Data(contentsOf: URL(fileURLWithPath: try binary(tool)))
            bytes.append(0)
            try bytes.write(to: URL(fileURLWithPath: newBin + "/" + tool))
            chmod(newBin + "/" + tool, 0o755)
        }
        let bin = root + "/usr/local/bin"
        let original = try Data(contentsOf: URL(fileURLWithPath: bin + "/gatewayd"))
        let (upgraded, upgradeText) = try runTool(
            "/bin/bash", [Self.repository + "/Deploy/install.sh", "--root", root, "--bin", newBin], in: scratch)
        #expect(upgraded == 0, "\(upgradeText)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: bin + "/gatewayd.previous")) == original)
        #expect(try Data(contentsOf: URL(fileURLWithPath: bin + "/gatewayd")) != original)
        let (rolled, rollText) = try runTool(
            "/bin/bash", [Self.repository + "/Deploy/install.sh", "--root", root, "--rollback"], in: scratch)
        #expect(rolled == 0, "\(rollText)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: bin + "/gatewayd")) == original)
    }
}
