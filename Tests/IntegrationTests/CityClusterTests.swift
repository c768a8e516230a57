import Foundation
import JSON
import Logging
import MQTT
import Privacy
import SQLite
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Many gateways into the clustered city broker (Deploy/city): three RabbitMQ nodes, gatewayd
/// processes with their own certificates and simulated fleets, and a consumer group that
/// applies the upstream contract (Firmware-Protocols/upstream.md).
@Suite(.serialized, .timeLimit(.minutes(12)))
struct CityClusterTests {
    struct Site {
        let id: String
        let scratch: Scratch
        let broker: Broker
        let gateway: GatewayProcess
        let fleet: ChildProcess
        let first: Int
    }

    static let windows =
        #""aggregation": {"window_s": 2, "lateness_ms": 500},"#
        + #""alerts": {"water": {"warning_cm": 100, "alarm_cm": 200, "dwell_s": 0}},"#

    /// Twenty gateways (six under the sanitizer, which is several times slower), spread over
    /// the nodes. The node a third of them are on is killed (-9), then, once it is back,
    /// another is stopped cleanly and brought back. Alarms raised during each failover reach
    /// the consumers; every aggregate window stored on any board arrives exactly once after
    /// de-duplication, at its final revision; and a gateway's certificate publishing under
    /// another gateway's prefix is refused by the cluster and is nowhere in the other's data.
    @Test func gatewaysRideOutNodeFailuresAndLoseNothing() async throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["TG_CITY_GATEWAYS"].flatMap { Int($0) } ?? (environment["TG_SANITIZER"] == nil ? 20 : 6)
        let ids = (1...count).map { String(format: "cg-%02d", $0) }
        let scratch = try Scratch()
        let clock = Date()
        let cluster = try CityCluster(scratch: scratch, gateways: ids)
        print("city: 3-node cluster up in \(seconds(since: clock)) s")
        let consumerDB = scratch.file("city.db")
        try cluster.startConsumer(database: consumerDB)
        try cluster.startConsumer(database: consumerDB)

        var sites: [Site] = []
        for (index, id) in ids.enumerated() {
            let siteScratch = try Scratch()
            let broker = try Broker(scratch: siteScratch)
            let gateway = try GatewayProcess(
                scratch: siteScratch, brokerPort: broker.port,
                extra: Self.windows + cluster.upstreamSection(gatewayID: id, first: index % 3), gatewayID: id)
            try gateway.start()
            let fleet = try ChildProcess(
                name: "gwsim", executable: try binary("gwsim"),
                arguments: [
                    "--port", String(broker.port), "--vehicles", "2", "--sensors", "1", "--rate", "10",
                    "--seed", String(index + 1), "--client-prefix", "sim-\(id)", "--quiet",
                ],
                logPath: siteScratch.file("gwsim.log"))
            sites.append(
                Site(id: id, scratch: siteScratch, broker: broker, gateway: gateway, fleet: fleet, first: index % 3))
        }
        let city = { try Database(path: consumerDB, options: [.readOnly]) }
        try waitFor("every gateway online and its aggregates at the consumers", seconds: 90) {
            let online = try textRows(city(), "SELECT gateway FROM status WHERE state = 'online'")
            let sending = try textRows(city(), "SELECT DISTINCT gateway FROM aggregates")
            return Set(online).isSuperset(of: ids) && Set(sending).isSuperset(of: ids)
        }

        // 1. kill -9 of node 1, with a third of the gateways on it.
        let killed = try await failover(
            cluster: cluster, sites: sites, node: 1, kill: true, alarmOn: sites[0], city: city)
        try cluster.startNode(1)
        // 2. Node 2 stopped cleanly (a rolling upgrade), with another third on it.
        let stopped = try await failover(
            cluster: cluster, sites: sites, node: 2, kill: false, alarmOn: sites[1], city: city)
        try cluster.startNode(2)
        print(
            "city: node 1 killed: link lost -> connected to another node in \(killed.failoverMs) ms (slowest gateway on it);"
                + " an alarm raised then at the consumers \(killed.alarmMs) ms after its publish"
        )
        print(
            "city: node 2 stopped: link lost -> connected to another node in \(stopped.failoverMs) ms (slowest gateway on it);"
                + " an alarm raised then at the consumers \(stopped.alarmMs) ms after its publish"
        )

        try forgeryIsRefused(cluster: cluster, victim: sites[0].id, forger: sites[1].id, city: city)

        // Quiet the fleets, let every window close and every outbox drain, then compare.
        for site in sites { site.fleet.stop() }
        for site in sites {
            try waitFor("\(site.id): windows closed and outbox empty", seconds: 60) {
                // The hourly rollups close at the hour: the 2 s windows are the ones to wait for.
                try site.gateway.count("SELECT count(*) FROM aggregates WHERE revision = 0 AND window_s = 2") == 0
                    && site.gateway.count("SELECT count(*) FROM outbox_v") == 0
            }
        }
        var windows = 0
        for site in sites {
            // Vehicles reach the city under their pseudonyms (the default): name the board's
            // windows the same way, with the board's own secret.
            let secret = try Pseudonymizer.loadOrCreateSecret(at: site.scratch.file("pseudonym.key"))
            let pseudonyms = Pseudonymizer(secret: secret, periodDays: 30)
            let vehicles = Set(
                try textRows(site.gateway.database(), "SELECT device FROM devices_v WHERE kind = 'vehicle'"))
            let board = Set(
                try textRows(
                    site.gateway.database(),
                    "SELECT device||'|'||signal||'|'||window_s||'|'||start_ms||'|'||count||'|'||revision FROM aggregates_v"
                ).map { row -> String in
                    let fields = row.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                    guard vehicles.contains(fields[0]), let start = Int64(fields[3]) else { return row }
                    return ([pseudonyms.pseudonym(of: fields[0], atMs: start)] + fields.dropFirst()).joined(
                        separator: "|")
                })
            windows += board.count
            #expect(!board.isEmpty)
            try waitFor("\(site.id): the consumers hold every window at its final revision", seconds: 60) {
                let consumed = Set(
                    try textRows(
                        city(),
                        "SELECT device||'|'||signal||'|'||window_s||'|'||start_ms||'|'||count||'|'||revision"
                            + " FROM aggregates WHERE gateway = '\(site.id)'"))
                return consumed == board
            }
        }
        let outcomes = try textRows(city(), "SELECT outcome||'='||count FROM outcomes ORDER BY outcome")
        let refused = try textRows(city(), "SELECT topic||' '||reason FROM refused")
        #expect(refused.isEmpty, "\(refused)")
        print(
            "city: \(count) gateways, \(windows) aggregate windows, all at the consumers once at their final revision; consumer outcomes \(outcomes)"
        )
        withExtendedLifetime((cluster, sites)) {}
    }

    /// Stops `node`, raises an alarm on a gateway that was on it once the node is down, and
    /// measures, from each gateway's own log, how long its link took from the loss to connected
    /// on another node, and how long the alarm took from its publish to the consumers.
    private func failover(
        cluster: CityCluster, sites: [Site], node: Int, kill: Bool, alarmOn site: Site,
        city: () throws -> Database
    ) async throws -> (failoverMs: Int, alarmMs: Int) {
        let onNode = sites.filter { $0.first == node - 1 }
        #expect(onNode.contains { $0.id == site.id })
        let address = cluster.nodes[node - 1].mqtt
        for gateway in onNode {
            #expect(try FaultTests.health(gateway.gateway)["upstream"]?["node"] == .string(address))
        }
        try cluster.stopNode(node, kill: kill)
        let publisher = try Publisher(port: site.broker.port)
        let sensor = "flood-\(node)"
        let published = Date()
        let now = Int64(published.timeIntervalSince1970 * 1000)
        try await publisher.send("v1/water/\(sensor)/level", #"{"ts":\#(now),"seq":1,"level_cm":250}"#)
        var alarmMs = 0
        do {
            try waitFor("the alarm of \(site.id) at the consumers", seconds: 60) {
                let found = try city().scalarInt(
                    "SELECT count(*) FROM alerts WHERE gateway = '\(site.id)' AND device = '\(sensor)' AND state = 'alarm'"
                )
                if found == 1, alarmMs == 0 { alarmMs = Int(Date().timeIntervalSince(published) * 1000) }
                return found == 1
            }
        } catch {
            print(
                "city: \(site.id)'s link:\n" + Self.upstreamLines(site.gateway.log).suffix(20).joined(separator: "\n"))
            print("city: consumers:\n" + cluster.consumerLogs)
            throw error
        }
        var failoverMs = 0
        for gateway in onNode {
            try waitFor("\(gateway.id) on another node", seconds: 60) {
                let upstream = try FaultTests.health(gateway.gateway)["upstream"]
                return upstream?["connected"] == .bool(true) && upstream?["node"] != .string(address)
            }
            let lines = Self.upstreamLines(gateway.gateway.log)
            guard let lost = lines.lastIndex(where: { $0.contains("event=mqtt_connection_lost") }),
                let back = lines[lost...].firstIndex(where: { $0.contains("event=mqtt_connected") }),
                let from = Self.timestamp(lines[lost]), let to = Self.timestamp(lines[back])
            else {
                Issue.record("\(gateway.id): no loss and reconnection in its log")
                continue
            }
            let took = Int(to.timeIntervalSince(from) * 1000)
            if took > 5000 {
                print("city: \(gateway.id) took \(took) ms:\n" + lines.suffix(12).joined(separator: "\n"))
            }
            failoverMs = max(failoverMs, took)
            #expect((try FaultTests.metric(gateway.gateway, "gateway_upstream_failovers_total") ?? 0) >= 1)
        }
        return (failoverMs, alarmMs)
    }

    static func upstreamLines(_ log: String) -> [Substring] {
        log.split(separator: "\n").filter {
            ($0.contains("link=upstream") || $0.contains("component=upstream")) && !$0.contains("level=debug")
        }
    }

    /// The `ts=` of a log line.
    static func timestamp(_ line: Substring) -> Date? {
        guard let field = line.split(separator: " ").first(where: { $0.hasPrefix("ts=") }) else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: String(field.dropFirst(3)))
    }

    /// `forger`'s certificate publishes a batch under `victim`'s prefix: the cluster closes the
    /// connection without a PUBACK. A marker then sent under the forger's own prefix reaches the
    /// consumers, and the forged batch is nowhere.
    private func forgeryIsRefused(
        cluster: CityCluster, victim: String, forger: String, city: () throws -> Database
    ) throws {
        /// A client holding the forger's certificate, on these nodes.
        func client(_ role: String, nodes: [CityCluster.Node]) throws -> MQTTClient {
            var configuration = MQTTClient.Configuration(clientID: "\(role)-\(UUID().uuidString.prefix(6))")
            configuration.brokers = nodes.map { .init(host: "127.0.0.1", port: $0.mqttPort) }
            configuration.tls = cluster.clientTLS(forger)
            configuration.cleanSession = true
            let client = try MQTTClient(configuration: configuration, logger: Logger(level: .error))
            client.start()
            try waitFor("the \(role) client to connect") { client.isConnected }
            return client
        }
        // Two nodes: the failover count shows the connection was closed under it.
        let forging = try client("forger", nodes: [cluster.nodes[2], cluster.nodes[0]])
        let forged = "forged-\(UUID().uuidString.lowercased())"
        let acknowledged = Mutex(false)
        try forging.publish(
            topic: "city/\(victim)/aggregates",
            payload: Array(
                #"{"batch_id":"\#(forged)","gateway_id":"\#(victim)","items":[{"device":"forged","signal":"speed_kmh","window_s":2,"start_ms":0,"count":1,"min":1,"max":1,"mean":1,"sum":1,"last":1,"revision":99}]}"#
                    .utf8), qos: 1
        ) { result in
            if case .success = result { acknowledged.withLock { $0 = true } }
        }
        try waitFor("the cluster to close the forger's connection") { forging.failovers >= 1 }
        forging.stop()
        #expect(!acknowledged.withLock { $0 }, "the cluster acknowledged a publish under another gateway's prefix")

        let honest = try client("marker", nodes: [cluster.nodes[2]])
        let marker = "marker-\(UUID().uuidString.lowercased())"
        try honest.publish(
            topic: "city/\(forger)/events",
            payload: Array(
                #"{"batch_id":"\#(marker)","gateway_id":"\#(forger)","items":[{"device":"marker","type":"test","detail":"","ts_ms":0}]}"#
                    .utf8), qos: 1)
        try waitFor("the marker at the consumers", seconds: 30) {
            try city().scalarInt("SELECT count(*) FROM batches WHERE batch_id = '\(marker)'") == 1
        }
        honest.stop()
        #expect(try city().scalarInt("SELECT count(*) FROM batches WHERE batch_id = '\(forged)'") == 0)
        #expect(try city().scalarInt("SELECT count(*) FROM aggregates WHERE device = 'forged'") == 0)
        #expect(try city().scalarInt("SELECT count(*) FROM refused") == 0)
    }
}

private func seconds(since date: Date) -> Int { Int(Date().timeIntervalSince(date).rounded()) }
