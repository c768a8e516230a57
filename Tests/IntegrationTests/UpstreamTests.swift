import Foundation
import JSON
import Logging
import MQTT
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The path to the city's broker: mutual TLS, store-and-forward, alerts first.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct UpstreamTests {
    static let fastWindows =
        #""aggregation": {"window_s": 1, "lateness_ms": 200},"#
        + #""alerts": {"water": {"warning_cm": 100, "alarm_cm": 200, "dwell_s": 0}},"#

    @Test func forwardsAlertsAndAggregatesOverMutualTLS() async throws {
        let scratch = try Scratch()
        let upstream = try UpstreamBroker(scratch: scratch, gatewayID: "tls-gw")
        let observer = try Subscriber(port: upstream.port, filter: "city/#", tls: upstream.clientTLS)
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port,
            extra: Self.fastWindows + upstream.gatewaySection(), gatewayID: "tls-gw")
        try gateway.start()
        try waitFor("the upstream link") { gateway.log.contains("event=upstream_connected") }
        let publisher = try Publisher(port: broker.port)
        // Both readings at the start of the current 1 s window, so they always share it
        // (`now` and `now + 1` straddled two windows when the clock stood at x.999 s).
        let wall = Int64(Date().timeIntervalSince1970 * 1000)
        let now = wall - wall % 1000
        try await publisher.send("v1/water/tls-drain/level", #"{"ts":\#(now),"seq":1,"level_cm":50}"#)
        try await publisher.send("v1/water/tls-drain/level", #"{"ts":\#(now + 1),"seq":2,"level_cm":250}"#)
        let alert = try observer.waitForMessage(topic: "city/tls-gw/alerts", containing: #""state":"alarm""#)
        let alertJSON = try JSONParser.parse(alert.payload)
        #expect(alertJSON["device"] == .string("tls-drain"))
        #expect(alertJSON["alert_id"]?.string?.hasPrefix("tls-gw-") == true)
        // Both readings share one window; if the second reached the gateway after that window had
        // closed (a loaded machine), it comes as revision 2 of the same window: wait for the count.
        let aggregates = try observer.waitForMessage(
            topic: "city/tls-gw/aggregates",
            containing: #""signal":"level_cm","window_s":1,"start_ms":\#(now),"count":2"#)
        let batch = try JSONParser.parse(aggregates.payload)
        #expect(batch["batch_id"]?.string != nil)
        guard case .array(let items) = batch["items"] else {
            Issue.record("no items in \(batch)")
            return
        }
        let item = try #require(
            items.first {
                $0["device"] == .string("tls-drain") && $0["signal"] == .string("level_cm") && $0["count"] == .int(2)
            })
        #expect(item["count"] == .int(2))
        #expect(item["max"]?.number == 250)
        #expect((item["revision"]?.number ?? 0) >= 1)
        let status = try JSONParser.parse(
            observer.waitForMessage(topic: "city/tls-gw/status", containing: #""state":"online""#).payload)
        // The members of Firmware-Protocols/upstream.md's status example; the certificate's
        // expiry appears once the hourly check has run.
        let data = try Data(contentsOf: VectorFile.directory.appendingPathComponent("upstream.json"))
        let example = try #require(
            try JSONParser.parse(Array(data))["examples"]?.arrayValue?.first {
                $0["name"] == .string("status (retained)")
            })
        let documented = Set(try #require(example["payload"]?.object?.keys))
        let sent = Set(try #require(status.object?.keys))
        #expect(sent.isSubset(of: documented), "not in the contract: \(sent.subtracting(documented))")
        #expect(
            documented.subtracting(sent).isSubset(of: ["cert_seconds_to_expiry"]),
            "missing: \(documented.subtracting(sent))")
        try waitFor("an empty outbox") { try gateway.count("SELECT count(*) FROM outbox_v") == 0 }
        _ = broker
    }

    /// The link is refused, with a clear error, when any part of the TLS trust fails; and
    /// gatewayd refuses to start on material it can check itself.
    @Test(arguments: [
        "other CA", "wrong host name", "expired client certificate", "no client certificate", "plaintext",
    ])
    func refusesAnUntrustedLink(case name: String) throws {
        let scratch = try Scratch()
        let upstream = try UpstreamBroker(scratch: scratch, gatewayID: "gw-x")
        let broker = try Broker(scratch: scratch)
        var section = upstream.gatewaySection()
        var expectInLog = ""
        var refusesToStart = false
        var extraBrokers: [Broker] = []
        defer { withExtendedLifetime(extraBrokers) {} }
        switch name {
        case "other CA":
            let other = scratch.file("other")
            try UpstreamBroker.makeCertificates(in: other, gatewayID: "gw-x")
            section = upstream.gatewaySection(ca: other + "/ca.crt")
            expectInLog = "certificate verify failed"
        case "wrong host name":
            // A listener whose certificate names 127.0.0.1 only, reached as "localhost".
            let named = try TestCertificates(scratch: scratch)
            let other = try Broker(scratch: scratch, name: "named", tls: named)
            extraBrokers.append(other)
            section =
                #""upstream": {"host": "localhost", "port": \#(other.tlsPort!), "tls": {"ca_file": "\#(named.caFile)", "cert_file": "\#(upstream.certificates)/client.crt", "key_file": "\#(upstream.certificates)/client.key"}},"#
            expectInLog = "host name verification failed"
        case "expired client certificate":
            section = upstream.gatewaySection(cert: "client-expired")
            expectInLog = "client certificate expired"
            refusesToStart = true
        case "no client certificate":
            section =
                #""upstream": {"host": "127.0.0.1", "port": \#(upstream.port), "tls": {"ca_file": "\#(upstream.certificates)/ca.crt"}},"#
            expectInLog = "cert_file and key_file are required"
            refusesToStart = true
        default:
            section = #""upstream": {"host": "127.0.0.1", "port": \#(upstream.port)},"#
            expectInLog = "the upstream link requires mutual TLS"
            refusesToStart = true
        }
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: broker.port, extra: section)
        try gateway.start(waitForConnection: false)
        let child = try #require(gateway.child)
        if refusesToStart {
            try waitFor("gatewayd to refuse") { !child.isRunning }
            #expect(child.terminationStatus != 0)
        } else {
            // Two refusals: the retry after the first was refused as well, with no connection
            // in between (the second refusal is the marker, not a sleep).
            try waitFor("two refusals in the log") { gateway.log.components(separatedBy: expectInLog).count > 2 }
            #expect(!gateway.log.contains("event=upstream_connected"))
            #expect(child.isRunning, "ingest goes on without the upstream link")
        }
        #expect(gateway.log.contains(expectInLog), "\(gateway.log)")
        _ = broker
    }

    /// The upstream broker goes away, gatewayd keeps ingesting and is restarted during the
    /// outage; when the link returns every window arrives (none twice once de-duplicated by
    /// batch_id) and alerts come ahead of the aggregate backlog.
    @Test func outageWithARestartLosesNothing() async throws {
        let scratch = try Scratch()
        var upstream: UpstreamBroker? = try UpstreamBroker(scratch: scratch, gatewayID: "out-gw", persistence: true)
        let upstreamPort = upstream!.port
        let tls = upstream!.clientTLS
        let section = upstream!.gatewaySection()
        let observer = try Subscriber(
            port: upstreamPort, filter: "city/out-gw/+", tls: tls, persistentID: "city-observer")
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port, extra: Self.fastWindows + section, gatewayID: "out-gw")
        try gateway.start()
        try waitFor("the upstream link") { gateway.log.contains("event=upstream_connected") }
        let publisher = try Publisher(port: broker.port)
        var seq = 0
        func publishSecond(level: Double = 20) async throws {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for sensor in 0..<3 {
                try await publisher.send(
                    "v1/water/out-\(sensor)/level",
                    #"{"ts":\#(now),"seq":\#(seq),"level_cm":\#(level + Double(sensor))}"#)
            }
            seq += 1
        }
        for _ in 0..<3 {
            try await publishSecond()
            usleep(400_000)
        }
        try waitFor("the first windows upstream") {
            observer.messages().contains { $0.topic == "city/out-gw/aggregates" }
        }
        // Outage: a clean stop, so the broker keeps the observer's queue.
        upstream?.child.stop()
        upstream = nil
        for _ in 0..<3 {
            try await publishSecond()
            usleep(400_000)
        }
        try await publishSecond(level: 300)  // an alarm during the outage
        try waitFor("windows waiting in the outbox", seconds: 10) {
            try gateway.count("SELECT count(*) FROM outbox_v WHERE topic = 'aggregates'") >= 2
        }
        #expect(gateway.stop() == 0)
        try gateway.start()
        for _ in 0..<3 {
            try await publishSecond()
            usleep(400_000)
        }
        try waitFor("every reading in a closed window", seconds: 10) {
            try gateway.count("SELECT sum(count) FROM aggregates_v WHERE window_s = 1")
                == gateway.count("SELECT count(*) FROM readings_v")
        }
        let backlog = try gateway.count("SELECT count(*) FROM outbox_v")
        #expect(backlog > 0)
        let data = { observer.messages().filter { $0.topic != "city/out-gw/status" } }
        let before = data().count
        upstream = try UpstreamBroker(scratch: scratch, gatewayID: "out-gw", port: upstreamPort, persistence: true)
        try waitFor("the outbox to drain", seconds: 60) { try gateway.count("SELECT count(*) FROM outbox_v") == 0 }
        try waitFor("the observer to catch up", seconds: 20) {
            data().count >= before + Int(backlog)
        }

        // Every closed window in the store arrived upstream with its final revision.
        var received: [String: Int64] = [:]
        var batches = Set<String>()
        var duplicateBatches = 0
        var itemsSeen = Set<String>()
        var doubledItems: [String] = []
        for message in observer.messages() where message.topic == "city/out-gw/aggregates" {
            let batch = try JSONParser.parse(message.payload)
            let id = batch["batch_id"]!.string!
            if !batches.insert(id).inserted {
                duplicateBatches += 1
                continue
            }
            guard case .array(let items) = batch["items"] else { continue }
            for item in items {
                guard case .int(let window) = item["window_s"], case .int(let start) = item["start_ms"] else {
                    continue
                }
                let key = "\(item["device"]!.string!)|\(item["signal"]!.string!)|\(window)|\(start)"
                if case .int(let revision) = item["revision"] {
                    received[key] = max(received[key] ?? 0, revision)
                    // Sent again only under the same batch_id (dropped above): one window
                    // revision in two different batches would be counted twice by the city.
                    if !itemsSeen.insert("\(key) r\(revision)").inserted { doubledItems.append("\(key) r\(revision)") }
                }
            }
        }
        let db = try gateway.database()
        let stored = try db.statement("SELECT device, signal, window_s, start_ms, revision FROM aggregates_v")
        var missing: [String] = []
        var count = 0
        while try stored.step() {
            count += 1
            let key = "\(stored.text(0)!)|\(stored.text(1)!)|\(stored.int64(2))|\(stored.int64(3))"
            if received[key] != stored.int64(4) {
                missing.append("\(key) r\(stored.int64(4)) got \(received[key] ?? 0)")
            }
        }
        #expect(count >= 10)
        #expect(missing.isEmpty, "\(missing.prefix(10))")
        #expect(doubledItems.isEmpty, "sent twice under different batch ids: \(doubledItems.prefix(10))")
        // After the link returned, the alert was delivered before the aggregate backlog.
        // (A batch the restarted broker re-delivers from before the outage is not backlog.)
        let batchID = { (message: InboundMessage) in (try? JSONParser.parse(message.payload))?["batch_id"]?.string }
        let seenBefore = Set(data().prefix(before).compactMap(batchID))
        let afterOutage = data().dropFirst(before)
        let firstAlert = afterOutage.firstIndex { $0.topic == "city/out-gw/alerts" }
        let firstAggregate = afterOutage.firstIndex {
            $0.topic == "city/out-gw/aggregates" && !seenBefore.contains(batchID($0) ?? "")
        }
        #expect(firstAlert != nil)
        #expect(firstAlert.map { alert in firstAggregate.map { alert < $0 } ?? true } == true)
        _ = broker
        _ = duplicateBatches
    }

    /// Two city broker nodes: the node the link is on dies (kill -9), and the link moves to the
    /// other at once (no backoff: the first node's refusal is not waited out), an alarm raised
    /// meanwhile arrives there, and health and /metrics say which node and how many failovers.
    @Test func aLostNodeFailsOverToTheNextAtOnce() async throws {
        let scratch = try Scratch()
        let first = try UpstreamBroker(scratch: scratch, gatewayID: "fo-gw", name: "node-a")
        let second = try UpstreamBroker(scratch: scratch, gatewayID: "fo-gw", name: "node-b")
        let onSecond = try Subscriber(port: second.port, filter: "city/#", tls: second.clientTLS)
        let onFirst = try Subscriber(port: first.port, filter: "city/#", tls: first.clientTLS)
        let broker = try Broker(scratch: scratch)
        let tls = first.gatewaySection().split(separator: #""tls""#, maxSplits: 1)[1]
        let section =
            #""upstream": {"hosts": ["127.0.0.1:\#(first.port)", "127.0.0.1:\#(second.port)"], "max_rate_msgs_per_s": 1000, "status_interval_s": 1, "tls""#
            + tls
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port, extra: Self.fastWindows + section, gatewayID: "fo-gw")
        try gateway.start()
        let publisher = try Publisher(port: broker.port)
        let wall = Int64(Date().timeIntervalSince1970 * 1000)
        try await publisher.send("v1/water/fo-drain/level", #"{"ts":\#(wall),"seq":1,"level_cm":50}"#)
        _ = try onFirst.waitForMessage(topic: "city/fo-gw/status", containing: #""state":"online""#)
        let health = try FaultTests.health(gateway)
        #expect(health["upstream"]?["node"] == .string("127.0.0.1:\(first.port)"))
        #expect(health["upstream"]?["failovers"] == .int(0))

        first.child.stop(signal: SIGKILL)
        let lost = Date()
        try await publisher.send("v1/water/fo-drain/level", #"{"ts":\#(wall + 1000),"seq":2,"level_cm":250}"#)
        let alert = try onSecond.waitForMessage(topic: "city/fo-gw/alerts", containing: #""state":"alarm""#)
        let failoverSeconds = Date().timeIntervalSince(lost)
        #expect(try JSONParser.parse(alert.payload)["device"] == .string("fo-drain"))
        try waitFor("health to name the second node") {
            let upstream = try FaultTests.health(gateway)["upstream"]
            return upstream?["node"] == .string("127.0.0.1:\(second.port)") && upstream?["connected"] == .bool(true)
        }
        #expect((try FaultTests.metric(gateway, "gateway_upstream_failovers_total") ?? 0) >= 1)
        let metrics = try APIEndpointTests.get(gateway.httpPort, "/metrics", token: nil).text
        #expect(metrics.contains(#"gateway_upstream_node{node="127.0.0.1:\#(second.port)"} 1"#))
        let table = try runTool(
            try binary("gwctl"), ["health"], in: scratch,
            environment: ["GWCTL_GATEWAY": "http://127.0.0.1:\(gateway.httpPort)"])
        #expect(
            table.output.contains("upstream     connected (node 127.0.0.1:\(second.port), "),
            "\(table.output)")
        // The default backoff cap is 5 s; a failover that waited for it would take longer.
        #expect(failoverSeconds < 5, "failover took \(failoverSeconds) s")
        print("failover: link on the second node, alarm delivered, \(Int(failoverSeconds * 1000)) ms after kill -9")
        _ = broker
    }

    /// Deploy/city/mosquitto, as shipped: a certificate's CN is its username and the pattern ACL
    /// lets it publish only under city/{CN}/. Gateway B publishing under A's prefix is dropped
    /// (B's own marker, sent after it, arrives; the forgery never does), and the platform's
    /// read-only account cannot publish at all.
    @Test func theMosquittoCityPolicyConfinesEachCertificate() async throws {
        let scratch = try Scratch()
        let certificates = scratch.file("certs")
        try UpstreamBroker.makeCertificates(in: certificates, gatewayID: "gw-a")
        let make = CityCluster.root + "/Deploy/make-certs.sh"
        for name in ["gw-a", "gw-b", "city-platform"] {
            let (status, output) = try runTool("/bin/bash", [make, "--client", certificates, name], in: scratch)
            #expect(status == 0, "\(output)")
        }
        let port = try freeLoopbackPort()
        let shipped = CityCluster.root + "/Deploy/city/mosquitto/"
        let acl = scratch.file("acl")
        try FileManager.default.copyItem(atPath: shipped + "acl", toPath: acl)
        let config =
            try String(contentsOfFile: shipped + "city.conf", encoding: .utf8)
            .replacingOccurrences(of: "listener 8883", with: "listener \(port) 127.0.0.1")
            .replacingOccurrences(of: "/etc/mosquitto/city/acl", with: acl)
            .replacingOccurrences(of: "/etc/mosquitto/city/", with: certificates + "/")
            + "persistence false\nlog_dest stdout\nuser \(NSUserName())\n"
        try config.write(toFile: scratch.file("city.conf"), atomically: false, encoding: .utf8)
        chmod(scratch.path, 0o755)
        let broker = try ChildProcess(
            name: "city-mosquitto", executable: try Broker.executable(), arguments: ["-c", scratch.file("city.conf")],
            logPath: scratch.file("city-mosquitto.log"))
        try waitFor("the city mosquitto") {
            guard broker.isRunning else { throw HarnessError.exited("mosquitto", broker.terminationStatus, broker.log) }
            return canConnect(port: port)
        }
        func tls(_ name: String) -> MQTTClient.Configuration.TLS {
            .init(
                caFile: certificates + "/ca.crt", certFile: "\(certificates)/\(name).crt",
                keyFile: "\(certificates)/\(name).key")
        }
        let platform = try Subscriber(port: port, filter: "city/#", tls: tls("city-platform"))
        func client(_ name: String) throws -> MQTTClient {
            var configuration = MQTTClient.Configuration(clientID: "\(name)-\(UUID().uuidString.prefix(4))")
            configuration.port = port
            configuration.tls = tls(name)
            configuration.cleanSession = true
            let client = try MQTTClient(configuration: configuration, logger: Logger(level: .error))
            client.start()
            try waitFor("\(name) to connect") { client.isConnected }
            return client
        }
        let gatewayA = try client("gw-a")
        let gatewayB = try client("gw-b")
        let reader = try client("city-platform")
        try await gatewayA.publishAndWait(topic: "city/gw-a/events", payload: Array(#"{"own":"a"}"#.utf8))
        _ = try platform.waitForMessage(topic: "city/gw-a/events", containing: #""own":"a""#)
        try await gatewayB.publishAndWait(topic: "city/gw-a/aggregates", payload: Array(#"{"forged":"b"}"#.utf8))
        try await reader.publishAndWait(topic: "city/gw-a/alerts", payload: Array(#"{"forged":"platform"}"#.utf8))
        try await gatewayB.publishAndWait(topic: "city/gw-b/events", payload: Array(#"{"marker":"b"}"#.utf8))
        _ = try platform.waitForMessage(topic: "city/gw-b/events", containing: #""marker":"b""#)
        let forged = platform.messages().filter { String(decoding: $0.payload, as: UTF8.self).contains("forged") }
        #expect(forged.isEmpty, "\(forged.map(\.topic))")
        for client in [gatewayA, gatewayB, reader] { client.stop() }
    }

    /// The first node takes the TCP connection and then says nothing (a hung node, or one
    /// electing a leader): after `upstream.connect_timeout_s` the gateway tries the next node,
    /// instead of waiting for the keep-alive, and the data goes there.
    @Test func aNodeThatNeverAnswersIsLeftAfterTheConnectTimeout() async throws {
        let scratch = try Scratch()
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(silent, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        #expect(bound == 0 && listen(silent, 16) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(silent, $0, &length) }
        }
        let silentPort = Int(UInt16(bigEndian: address.sin_port))
        let upstream = try UpstreamBroker(scratch: scratch, gatewayID: "ct-gw")
        let observer = try Subscriber(port: upstream.port, filter: "city/#", tls: upstream.clientTLS)
        let broker = try Broker(scratch: scratch)
        let tls = upstream.gatewaySection().split(separator: #""tls""#, maxSplits: 1)[1]
        let section =
            #""upstream": {"hosts": ["127.0.0.1:\#(silentPort)", "127.0.0.1:\#(upstream.port)"], "connect_timeout_s": 1, "keepalive_s": 60, "status_interval_s": 1, "tls""#
            + tls
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port, extra: Self.fastWindows + section, gatewayID: "ct-gw")
        let started = Date()
        try gateway.start()
        _ = try observer.waitForMessage(topic: "city/ct-gw/status", containing: #""state":"online""#)
        let seconds = Date().timeIntervalSince(started)
        #expect(gateway.log.contains("no CONNACK within 1000 ms"), "\(gateway.log)")
        // Far below the 60 s keep-alive a blocking wait would have taken.
        #expect(seconds < 20, "the link came up after \(seconds) s")
        _ = broker
    }

    /// With the default configuration no VIN leaves the board: everything the city's broker
    /// received from a vehicle's hello, readings, trouble code, position and coolant alarm
    /// names it only by its pseudonym, and the secret behind it was made next to the store.
    @Test func noPlainVINReachesTheCityByDefault() async throws {
        let scratch = try Scratch()
        let upstream = try UpstreamBroker(scratch: scratch, gatewayID: "pv-gw")
        let observer = try Subscriber(port: upstream.port, filter: "#", tls: upstream.clientTLS)
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port, extra: Self.fastWindows + upstream.gatewaySection(),
            gatewayID: "pv-gw")
        try gateway.start()
        let publisher = try Publisher(port: broker.port)
        let vin = "1HGCM82633A004352"
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await publisher.send("v1/obd/\(vin)/hello", #"{"ts":\#(now),"fw":"2.1.0","hw":"obd-x1","model":"bus"}"#)
        try await publisher.send("v1/obd/\(vin)/pids", #"{"ts":\#(now),"seq":1,"pids":{"0D":"32","05":"A0"}}"#)
        try await publisher.send("v1/obd/\(vin)/dtc", #"{"ts":\#(now),"seq":2,"dtc":"0301"}"#)
        try await publisher.send(
            "v1/obd/\(vin)/gps", #"{"ts":\#(now),"seq":3,"lat":3.14,"lon":101.69,"speed_kmh":20}"#)
        _ = try observer.waitForMessage(topic: "city/pv-gw/alerts", containing: #""type":"coolant""#)
        _ = try observer.waitForMessage(topic: "city/pv-gw/events", containing: #""type":"dtc""#)
        _ = try observer.waitForMessage(topic: "city/pv-gw/aggregates", containing: #""signal":"speed_kmh""#)
        try waitFor("an empty outbox") { try gateway.count("SELECT count(*) FROM outbox_v") == 0 }
        let received = observer.messages()
        let leaked = received.filter {
            $0.topic.contains(vin) || String(decoding: $0.payload, as: UTF8.self).contains(vin)
        }
        #expect(leaked.isEmpty, "\(leaked.map { String(decoding: $0.payload, as: UTF8.self) })")
        #expect(received.contains { String(decoding: $0.payload, as: UTF8.self).contains(#""device":"pv-"#) })
        var info = stat()
        #expect(stat(scratch.file("pseudonym.key"), &info) == 0 && info.st_mode & 0o777 == 0o600)
        _ = broker
    }
}
