import Foundation
import Logging
import MQTT
import SQLite
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The Debian package (`Deploy/build-deb.sh`, of this build's binaries) installed with dpkg into
/// a throwaway root, its maintainer scripts run for real (`--force-script-chrootless`: they see
/// the root as `DPKG_ROOT`), then the installed broker configuration run by a real mosquitto
/// *through Debian's stock mosquitto.conf*: devices enrolled with `gwctl device add` reach
/// gatewayd over TLS and nothing else; one device cannot speak for another or read another's
/// OTA topics. Remove keeps configuration and data, purge leaves nothing. What needs a real
/// systemd (units started, READY, watchdog, reboot) is the board test's: Tests/Board/run.sh.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DeployTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let vinA = "1TGDA000000000001"
    static let vinB = "1TGDA000000000002"

    /// A root with the host's account files (as `useradd --prefix` needs them) and an empty
    /// dpkg database.
    static func makeRoot(_ scratch: Scratch) throws -> String {
        let root = scratch.file("root")
        for directory in ["/etc", "/var/lib/dpkg/info", "/var/lib/dpkg/updates"] {
            try FileManager.default.createDirectory(atPath: root + directory, withIntermediateDirectories: true)
        }
        FileManager.default.createFile(atPath: root + "/var/lib/dpkg/status", contents: nil)
        for name in ["passwd", "group", "shadow", "gshadow", "login.defs"] where access("/etc/" + name, F_OK) == 0 {
            try FileManager.default.copyItem(atPath: "/etc/" + name, toPath: root + "/etc/" + name)
        }
        return root
    }

    /// The package of this build's gatewayd and gwctl, as `make deb` makes it (but unstripped
    /// of the toolchain's runtime: a test package).
    static func package(revision: Int, in scratch: Scratch) throws -> String {
        let bin = (try binary("gatewayd") as NSString).deletingLastPathComponent
        let (status, output) = try runTool(
            "/bin/bash",
            [
                repository + "/Deploy/build-deb.sh", "--bin", bin, "--test-package", "--revision", String(revision),
                "--out", scratch.file("debs"),
            ], in: scratch)
        #expect(status == 0, "\(output)")
        return try #require(output.split(separator: "\n").last.map(String.init))
    }

    /// dpkg on the throwaway root; the libraries and mosquitto it depends on are the host's.
    static func dpkg(_ root: String, _ arguments: [String], in scratch: Scratch) throws -> (Int32, String) {
        try runTool(
            "/usr/bin/dpkg",
            ["--root=" + root, "--force-script-chrootless", "--force-depends", "--force-confold", "--log=/dev/null"]
                + arguments, in: scratch)
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
        let deb = try Self.package(revision: 1, in: scratch)
        let (status, output) = try Self.dpkg(root, ["-i", deb], in: scratch)
        #expect(status == 0, "\(output)")

        // What the package and its postinst laid down, and with which permissions.
        let etc = root + "/etc/telemetry-gateway"
        #expect(Self.mode(etc) == 0o750)
        #expect(Self.mode(etc + "/gatewayd.json") == 0o640)
        #expect(Self.mode(etc + "/broker.password") == 0o640)
        #expect(Self.mode(root + "/etc/mosquitto/certs/telemetry-gateway-ca.key") == 0o600)
        #expect(Self.mode(root + "/var/lib/telemetry-gateway") == 0o750)
        #expect(Self.mode(root + "/usr/bin/gatewayd") == 0o755)
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("telemetry-gateway:") && passwd.contains("/usr/sbin/nologin"))
        let unit = try String(contentsOfFile: root + "/lib/systemd/system/gatewayd.service", encoding: .utf8)
        for line in [
            "User=telemetry-gateway", "ProtectSystem=strict", "ReadWritePaths=/var/lib/telemetry-gateway",
            "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "Restart=on-failure", "Type=notify",
            "WatchdogSec=", "ExecStart=/usr/bin/gatewayd --config /etc/telemetry-gateway/gatewayd.json",
            "SystemCallFilter=@system-service\nSystemCallFilter=~@privileged\n", "SystemCallErrorNumber=EPERM",
            "RestrictNamespaces=yes", "ProtectProc=invisible", "UMask=0027",
        ] {
            #expect(unit.contains(line), "the unit lacks \(line)")
        }
        let dropIn = try String(
            contentsOfFile: root + "/lib/systemd/system/mosquitto.service.d/telemetry-gateway.conf", encoding: .utf8)
        #expect(
            dropIn.contains("CapabilityBoundingSet=CAP_CHOWN CAP_SETUID CAP_SETGID"), "Debian's ExecStartPre chowns")
        #expect(
            !dropIn.split(separator: "\n").contains { $0.hasPrefix("RuntimeDirectory=") },
            "systemd would re-own /run/mosquitto to root before ExecStart")
        for path in dropIn.split(separator: "\n").first(where: { $0.hasPrefix("ReadWritePaths=") })!.dropFirst(15)
            .split(separator: " ")
        {
            #expect(path.hasPrefix("-"), "\(path) must not fail the namespace when it does not exist yet")
        }
        // The identity is a file of the board's; the packaged configuration names it.
        let config = try String(contentsOfFile: etc + "/gatewayd.json", encoding: .utf8)
        #expect(config.contains("\"gateway_id_file\": \"/etc/telemetry-gateway/gateway-id\""))
        #expect(try !String(contentsOfFile: etc + "/gateway-id", encoding: .utf8).isEmpty)
        let conffiles = try String(contentsOfFile: root + "/var/lib/dpkg/status", encoding: .utf8)
        #expect(conffiles.contains(" /etc/telemetry-gateway/gatewayd.json "))
        #expect(conffiles.contains(" /etc/mosquitto/conf.d/telemetry-gateway.conf "))

        // Reinstalling (dpkg -i again, as an upgrade does) changes no configuration, credential or
        // certificate, and an operator's edit of the conffile survives.
        let kept = [etc + "/broker.password", etc + "/device-ca.crt", etc + "/gateway-id"]
        let before = try kept.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let edited = config.replacingOccurrences(of: "\"stats_interval_s\": 60", with: "\"stats_interval_s\": 30")
        #expect(edited != config)
        try edited.write(toFile: etc + "/gatewayd.json", atomically: true, encoding: .utf8)
        let (again, againOutput) = try Self.dpkg(root, ["-i", try Self.package(revision: 2, in: scratch)], in: scratch)
        #expect(again == 0, "\(againOutput)")
        #expect(try kept.map { try Data(contentsOf: URL(fileURLWithPath: $0)) } == before)
        #expect(try String(contentsOfFile: etc + "/gatewayd.json", encoding: .utf8) == edited)
        #expect(Self.mode(etc + "/gatewayd.json") == 0o640)

        // The installed broker configuration, run for real the way Debian runs it: Debian's own
        // mosquitto.conf (pid_file, persistence, include_dir conf.d) with the package's conf.d
        // file, paths moved into the root and the scratch folder, ports free.
        let stockPath = "/etc/mosquitto/mosquitto.conf"
        let stock = try #require(
            try? String(contentsOfFile: stockPath, encoding: .utf8), "Debian's \(stockPath) (apt-get install mosquitto)"
        )
        #expect(stock.contains("include_dir /etc/mosquitto/conf.d"))
        let plainPort = try freeLoopbackPort()
        let tlsPort = try freeLoopbackPort()
        let pidFile = scratch.file("mosquitto.pid")
        let confD = root + "/etc/mosquitto/conf.d/telemetry-gateway.conf"
        var brokerConfig = try String(contentsOfFile: confD, encoding: .utf8)
        #expect(brokerConfig.contains("listener 1883 127.0.0.1"), "the plaintext listener must be loopback only")
        brokerConfig = brokerConfig.replacingOccurrences(of: "/etc/mosquitto/", with: root + "/etc/mosquitto/")
            .replacingOccurrences(of: "listener 1883 127.0.0.1", with: "listener \(plainPort) 127.0.0.1")
            .replacingOccurrences(of: "listener 8883", with: "listener \(tlsPort) 127.0.0.1")
        try brokerConfig.write(toFile: confD, atomically: true, encoding: .utf8)
        let mainConfig =
            "user root\n"
            + stock.replacingOccurrences(of: "/run/mosquitto/mosquitto.pid", with: pidFile)
            .replacingOccurrences(
                of: "persistence_location /var/lib/mosquitto/", with: "persistence_location \(scratch.path)/"
            )
            .replacingOccurrences(of: "log_dest file /var/log/mosquitto/mosquitto.log", with: "log_dest stdout")
            .replacingOccurrences(
                of: "include_dir /etc/mosquitto/conf.d", with: "include_dir \(root)/etc/mosquitto/conf.d")
        try mainConfig.write(toFile: scratch.file("board-mosquitto.conf"), atomically: true, encoding: .utf8)
        let broker = try ChildProcess(
            name: "mosquitto", executable: try Broker.executable(),
            arguments: ["-c", scratch.file("board-mosquitto.conf")],
            logPath: scratch.file("board-mosquitto.log"))
        defer { _ = broker.stop() }
        try waitFor("the board's broker on Debian's mosquitto.conf") {
            guard broker.isRunning else {
                throw HarnessError.exited("mosquitto", broker.terminationStatus, broker.log)
            }
            return canConnect(port: tlsPort) && access(pidFile, F_OK) == 0
        }

        // Enroll two vehicles and a gauge with gwctl, as an installer would.
        let files = [
            "--passwd", root + "/etc/mosquitto/telemetry-gateway.passwd", "--acl",
            root + "/etc/mosquitto/telemetry-gateway.acl",
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
        #expect(
            listed == 0 && listing.contains(Self.vinA) && listing.contains("drain-7") && listing.contains("3 device(s)")
        )
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
            name: "gatewayd", executable: try binary("gatewayd"),
            arguments: ["--config", scratch.file("board-gatewayd.json")],
            logPath: scratch.file("board-gatewayd.log"))
        defer { _ = gateway.stop() }
        try waitFor("gatewayd on the board's broker") { telemetryConnected(gateway.log) }

        let ca = etc + "/device-ca.crt"
        let deviceA = try Self.device(
            port: tlsPort, ca: ca, user: Self.vinA, password: passwordA, subscribe: "v1/ota/#")
        let deviceB = try Self.device(
            port: tlsPort, ca: ca, user: Self.vinB, password: passwordB, subscribe: "v1/ota/#")
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
        // B published after A's spoofs were acknowledged, on the same single subscription of
        // gatewayd's: once B's reading is stored, the spoofs would have been stored before it.
        try waitFor("both vehicles' own readings") {
            try count("SELECT count(*) FROM readings_v WHERE device = '\(Self.vinB)'") == 1
        }
        #expect(try count("SELECT count(*) FROM readings_v") == 2)
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
        // A marker from the gateway's account to each vehicle, after everything above: what a
        // vehicle has seen by the time its marker arrives is all it was ever going to see.
        try await offerer.publishAndWait(topic: "v1/ota/\(Self.vinA)/cmd", payload: Array("marker".utf8))
        try await offerer.publishAndWait(topic: "v1/ota/\(Self.vinB)/cmd", payload: Array("marker".utf8))
        var seenA: [InboundMessage] = []
        var seenB: [InboundMessage] = []
        try waitFor("each vehicle's marker") {
            _ = deviceA.inbound.drain(into: &seenA, max: 100, deadlineNanos: monotonicNanos())
            _ = deviceB.inbound.drain(into: &seenB, max: 100, deadlineNanos: monotonicNanos())
            return seenA.contains { $0.payload == Array("marker".utf8) }
                && seenB.contains { $0.payload == Array("marker".utf8) }
        }
        #expect(
            seenA.map(\.topic) == ["v1/ota/\(Self.vinA)/offer", "v1/ota/\(Self.vinA)/cmd"],
            "A saw \(seenA.map(\.topic))")
        #expect(!seenA.contains { $0.payload == Array("forged".utf8) })
        #expect(
            seenB.map(\.topic) == ["v1/ota/\(Self.vinB)/offer", "v1/ota/\(Self.vinB)/cmd"],
            "B saw \(seenB.map(\.topic))")

        // No credentials, a wrong password, or a removed device: no connection at all.
        let anonymous = try Self.device(port: tlsPort, ca: ca, user: nil, password: nil)
        let wrong = try Self.device(port: tlsPort, ca: ca, user: Self.vinA, password: "guess")
        defer {
            anonymous.stop()
            wrong.stop()
        }
        let (removed, removedText) = try runTool(
            try binary("gwctl"), ["device", "remove", Self.vinB] + files, in: scratch)
        #expect(removed == 0, "\(removedText)")
        let removedB = try Self.device(port: tlsPort, ca: ca, user: Self.vinB, password: passwordB)
        defer { removedB.stop() }
        // Each is turned away by a CONNACK that refuses it, not merely not connected yet.
        try waitFor("three refusals") {
            anonymous.connectRefusals > 0 && wrong.connectRefusals > 0 && removedB.connectRefusals > 0
        }
        #expect(!anonymous.isConnected)
        #expect(!wrong.isConnected)
        #expect(!removedB.isConnected)
        _ = gateway.stop()

        // Remove keeps configuration, credentials and data; purge takes everything the package
        // made away, the user too.
        let (removedPackage, removeText) = try Self.dpkg(root, ["--remove", "telemetry-gateway"], in: scratch)
        #expect(removedPackage == 0, "\(removeText)")
        #expect(access(root + "/usr/bin/gatewayd", F_OK) != 0)
        #expect(access(root + "/lib/systemd/system/gatewayd.service", F_OK) != 0)
        for path in [etc + "/gatewayd.json", etc + "/gateway-id", etc + "/broker.password", confD] {
            #expect(access(path, F_OK) == 0, "remove must keep \(path)")
        }
        let (purged, purgeText) = try Self.dpkg(root, ["--purge", "telemetry-gateway"], in: scratch)
        #expect(purged == 0, "\(purgeText)")
        #expect(try !String(contentsOfFile: root + "/etc/passwd", encoding: .utf8).contains("telemetry-gateway:"))
        #expect(try !String(contentsOfFile: root + "/etc/group", encoding: .utf8).contains("telemetry-gateway:"))
        let left = try FileManager.default.subpathsOfDirectory(atPath: root).filter {
            !$0.hasPrefix("var/lib/dpkg")
                && ($0.contains("telemetry-gateway") || $0.contains("gatewayd") || $0.contains("gwctl"))
        }
        #expect(left.isEmpty, "purge left \(left)")
    }

    /// Upgrading to a newer package and going back to the older one (what Deploy/README.md tells
    /// an operator to do after a bad upgrade) keeps identity, credentials and data.
    @Test func upgradeThenGoBack() throws {
        let scratch = try Scratch()
        let root = try Self.makeRoot(scratch)
        let first = try Self.package(revision: 1, in: scratch)
        let second = try Self.package(revision: 2, in: scratch)
        #expect(try Self.dpkg(root, ["-i", first], in: scratch).0 == 0)
        let etc = root + "/etc/telemetry-gateway"
        let store = root + "/var/lib/telemetry-gateway/gateway.db"
        try Data("rows".utf8).write(to: URL(fileURLWithPath: store))
        let identity = try [etc + "/gateway-id", etc + "/broker.password"].map {
            try Data(contentsOf: URL(fileURLWithPath: $0))
        }
        func installed() throws -> String {
            let status = try String(contentsOfFile: root + "/var/lib/dpkg/status", encoding: .utf8)
            return status.split(separator: "\n").first { $0.hasPrefix("Version: ") }.map { String($0.dropFirst(9)) }
                ?? ""
        }
        let (up, upText) = try Self.dpkg(root, ["-i", second], in: scratch)
        #expect(up == 0, "\(upText)")
        #expect(try installed() == "0.1.0-2")
        let (down, downText) = try Self.dpkg(root, ["-i", first], in: scratch)
        #expect(down == 0, "\(downText)")
        #expect(try installed() == "0.1.0-1")
        #expect(try Data(contentsOf: URL(fileURLWithPath: store)) == Data("rows".utf8))
        #expect(
            try [etc + "/gateway-id", etc + "/broker.password"].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
                == identity)
        #expect(Self.mode(root + "/usr/bin/gatewayd") == 0o755)
    }
}
