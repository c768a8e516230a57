import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The MQTT side of gatewayd against real brokers: status topic, reconnects, TLS.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ConnectionTests {
    /// Retained `online` on connect; `offline` on a clean stop (sent by gatewayd) and after a
    /// kill -9 (sent by the broker as the will).
    @Test func statusTopicFollowsTheGateway() throws {
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: broker.port)
        let topic = "v1/gateway/it-\(broker.port)/status"
        let watcher = try Subscriber(port: broker.port, filter: "v1/gateway/+/status")
        try gateway.start()
        _ = try watcher.waitForMessage(topic: topic, containing: #""state":"online""#)
        #expect(gateway.stop() == 0)
        _ = try watcher.waitForMessage(topic: topic, containing: #""state":"offline""#)
        try gateway.start()
        // A client that subscribes later still learns the state: it is retained.
        let late = try Subscriber(port: broker.port, filter: topic)
        let retained = try late.waitForMessage(topic: topic, containing: #""state":"online""#)
        #expect(retained.retained)
        gateway.stop(signal: SIGKILL)
        _ = try late.waitForMessage(topic: topic, containing: #""state":"offline""#)
    }

    /// gatewayd started before its broker keeps retrying; after a broker restart it reconnects
    /// and subscribes again, and ingest goes on.
    @Test func reconnectsAndResubscribesAfterBrokerRestarts() async throws {
        let scratch = try Scratch()
        let port = try freeLoopbackPort()
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: port)
        try gateway.start(waitForConnection: false)
        try waitFor("a failed connect attempt") { gateway.log.contains("event=mqtt_connect_failed") }
        var broker: Broker? = try Broker(scratch: scratch, name: "first", port: port)
        try waitFor("gatewayd to connect") { telemetryConnected(gateway.log) }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        do {
            let publisher = try Publisher(port: port)
            try await publisher.send("v1/water/restart-1/level", #"{"ts":\#(now),"seq":1,"level_cm":10}"#)
        }
        try waitFor("first reading") { try gateway.count("SELECT count(*) FROM readings_v") == 1 }
        broker?.child.stop(signal: SIGKILL)
        broker = nil
        try waitFor("gatewayd to notice") { gateway.log.contains("event=mqtt_connection_lost") }
        broker = try Broker(scratch: scratch, name: "second", port: port)
        try waitFor("gatewayd to reconnect", seconds: 40) { telemetryConnected(gateway.log, count: 2) }
        let publisher = try Publisher(port: port)
        try await publisher.send("v1/water/restart-1/level", #"{"ts":\#(now + 1),"seq":2,"level_cm":11}"#)
        try waitFor("second reading") { try gateway.count("SELECT count(*) FROM readings_v") == 2 }
        #expect(try gateway.count("SELECT seq_gaps FROM devices_v") == 0)
        #expect(gateway.child?.isRunning == true)
        _ = broker
    }

    @Test func connectsOverTLSWithAVerifiedServerCertificate() async throws {
        let scratch = try Scratch()
        let certificates = try TestCertificates(scratch: scratch)
        let broker = try Broker(scratch: scratch, tls: certificates)
        let tlsPort = try #require(broker.tlsPort)
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: tlsPort,
            broker: #"{"host": "127.0.0.1", "port": \#(tlsPort), "tls": {"ca_file": "\#(certificates.caFile)"}}"#)
        try gateway.start()
        let publisher = try Publisher(port: broker.port)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await publisher.send("v1/water/tls-1/level", #"{"ts":\#(now),"seq":1,"level_cm":10}"#)
        try waitFor("the reading over TLS") { try gateway.count("SELECT count(*) FROM readings_v") == 1 }
    }

    /// Host name verification is always on: the certificate names 127.0.0.1 only, so "localhost"
    /// is refused; so is a server certificate from a CA the gateway does not trust.
    @Test(arguments: ["wrong host name", "other CA"])
    func refusesAServerItCannotVerify(case name: String) throws {
        let scratch = try Scratch()
        let certificates = try TestCertificates(scratch: scratch)
        let broker = try Broker(scratch: scratch, tls: certificates)
        let tlsPort = try #require(broker.tlsPort)
        let otherScratch = try Scratch()
        let other = try TestCertificates(scratch: otherScratch)
        let (host, ca) = name == "wrong host name" ? ("localhost", certificates.caFile) : ("127.0.0.1", other.caFile)
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: tlsPort,
            broker: #"{"host": "\#(host)", "port": \#(tlsPort), "tls": {"ca_file": "\#(ca)"}}"#)
        try gateway.start(waitForConnection: false)
        // Two refusals in a row: the retry after the first was refused too, so no connection
        // came in between (the second refusal is the marker, not a sleep).
        try waitFor("two refused connects") {
            gateway.log.components(separatedBy: "event=mqtt_connect_failed").count > 2
        }
        #expect(!gateway.log.contains("event=mqtt_connected"))
        // The log says why, in libmosquitto's and OpenSSL's words.
        let reason = name == "wrong host name" ? "host name verification failed" : "certificate verify failed"
        #expect(gateway.log.contains(reason), "\(gateway.log)")
        #expect(gateway.child?.isRunning == true)
        _ = broker
    }

    /// The API cannot listen (its port is taken): gatewayd says why and exits at once, after
    /// stopping what it had started, each part once. (A second stop of the ingest thread once
    /// hung it until systemd's start timeout; the board test caught that.)
    @Test func aTakenHTTPPortEndsTheStartCleanly() throws {
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: broker.port)
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(gateway.httpPort).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        #expect(bound && listen(holder, 1) == 0)
        try gateway.start(waitForConnection: false)
        let child = try #require(gateway.child)
        try waitFor("gatewayd to give up", seconds: 20) { !child.isRunning }
        #expect(child.terminationStatus != 0)
        #expect(gateway.log.contains("Address already in use"), "\(gateway.log)")
        let stopped = gateway.log.split(separator: "\n").filter { $0.contains("event=service_stopped") }
        #expect(stopped.count(where: { $0.contains("service=ingest") }) == 1, "the ingest thread stopped once")
        #expect(!stopped.contains { $0.contains("service=http") }, "the API never started, so it is not stopped")
        _ = broker
    }
}
