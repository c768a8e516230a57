import Foundation
import MQTT
import SQLite

#if canImport(Glibc)
    import Glibc
#endif

/// The city broker for the tests: three RabbitMQ nodes on loopback, made and driven by
/// `Deploy/city/cluster.sh` (the same script a developer runs), with the reference consumer
/// `Deploy/city/city-consumer.py` as the city platform.
final class CityCluster: @unchecked Sendable {
    struct Node {
        let number: Int
        let mqttPort: Int
        let amqpPort: Int
        var mqtt: String { "127.0.0.1:\(mqttPort)" }
    }

    let directory: String
    let nodes: [Node]
    private let scratch: Scratch
    private var consumers: [ChildProcess] = []

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    init(scratch: Scratch, gateways: [String]) throws {
        self.scratch = scratch
        directory = scratch.file("city")
        try Self.script(["up", directory] + gateways, scratch: scratch)
        let environment = try String(contentsOfFile: directory + "/cluster.env", encoding: .utf8)
        var values: [String: Int] = [:]
        for line in environment.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Int(parts[1]) { values[String(parts[0])] = value }
        }
        nodes = try (1...3).map { n in
            guard let mqtt = values["NODE\(n)_MQTT"], let amqp = values["NODE\(n)_AMQP"] else {
                throw HarnessError.notFound("node \(n)'s ports in \(environment)")
            }
            return Node(number: n, mqttPort: mqtt, amqpPort: amqp)
        }
    }

    @discardableResult
    static func script(_ arguments: [String], scratch: Scratch) throws -> String {
        let (status, output) = try runTool(
            "/bin/bash", [root + "/Deploy/city/cluster.sh"] + arguments, in: scratch)
        guard status == 0 else { throw HarnessError.exited("cluster.sh \(arguments.prefix(2))", status, output) }
        return output
    }

    func certificate(_ name: String) -> (cert: String, key: String) {
        ("\(directory)/certs/\(name).crt", "\(directory)/certs/\(name).key")
    }

    var caFile: String { directory + "/certs/ca.crt" }

    /// The TLS settings of a client holding `name`'s certificate.
    func clientTLS(_ name: String) -> MQTTClient.Configuration.TLS {
        let (cert, key) = certificate(name)
        return .init(caFile: caFile, certFile: cert, keyFile: key)
    }

    /// gatewayd's `upstream` section: all three nodes, starting from `first` (0-based), so a
    /// set of gateways spreads over the cluster.
    func upstreamSection(gatewayID: String, first: Int) -> String {
        let order = (0..<3).map { nodes[(first + $0) % 3].mqtt }
        let hosts = order.map { "\"\($0)\"" }.joined(separator: ", ")
        let (cert, key) = certificate(gatewayID)
        return
            #""upstream": {"hosts": [\#(hosts)], "max_rate_msgs_per_s": 1000, "status_interval_s": 2, "tls": {"ca_file": "\#(caFile)", "cert_file": "\#(cert)", "key_file": "\#(key)"}},"#
    }

    func stopNode(_ n: Int, kill: Bool) throws {
        try Self.script(["stop-node", directory, String(n)] + (kill ? ["--kill"] : []), scratch: scratch)
    }

    func startNode(_ n: Int) throws {
        try Self.script(["start-node", directory, String(n)], scratch: scratch)
    }

    /// Starts one more process of the consumer group on the platform queue, writing to `database`.
    func startConsumer(database: String) throws {
        let (cert, key) = certificate("city-platform")
        let child = try ChildProcess(
            name: "city-consumer", executable: "/usr/bin/python3",
            arguments: [
                Self.root + "/Deploy/city/city-consumer.py", "--db", database, "--ca", caFile, "--cert", cert,
                "--key", key, "--stats-s", "2",
                "--nodes", nodes.map { "127.0.0.1:\($0.amqpPort)" }.joined(separator: ","),
            ],
            logPath: scratch.file("consumer-\(consumers.count).log"))
        consumers.append(child)
        try waitFor("consumer \(consumers.count) to connect", seconds: 30) {
            guard child.isRunning else {
                throw HarnessError.exited("city-consumer.py", child.terminationStatus, child.log)
            }
            return child.log.contains("event=consumer_connected")
        }
    }

    var consumerLogs: String { consumers.map(\.log).joined(separator: "\n") }

    deinit {
        for consumer in consumers { consumer.stop() }
        _ = try? Self.script(["down", directory], scratch: scratch)
    }
}

/// Rows of a one-column query, as text.
func textRows(_ database: Database, _ sql: String) throws -> [String] {
    let statement = try database.statement(sql)
    var rows: [String] = []
    while try statement.step() { rows.append(statement.text(0) ?? "") }
    return rows
}
