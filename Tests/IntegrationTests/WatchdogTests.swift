import Foundation
import SQLite
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A datagram socket standing in for systemd's notify socket: what gatewayd sends, with when.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw HarnessError.notFound("a bindable \(path)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Every datagram that arrives within `seconds`, with its arrival time.
    func collect(seconds: Double) -> [(at: Date, text: String)] {
        var received: [(Date, String)] = []
        let end = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { received.append((Date(), String(decoding: buffer[0..<n], as: UTF8.self))) }
        }
        return received
    }

    /// Datagrams until one satisfies `until` (returned with it) or `seconds` pass.
    func collect(seconds: Double, until: (String) -> Bool) -> [String] {
        var received: [String] = []
        let end = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { continue }
            received.append(String(decoding: buffer[0..<n], as: UTF8.self))
            if until(received.last!) { break }
        }
        return received
    }
}

/// gatewayd under a (stand-in) systemd: it says when it is ready, pings the watchdog while its
/// ingest loop goes round, stops pinging while the store is stuck, and says when it stops.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct WatchdogTests {
    @Test func pingsOnlyWhileIngestIsHealthy() async throws {
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: broker.port)
        let socket = try NotifySocket(path: scratch.file("notify.sock"))
        gateway.environment = ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "400000"]
        try gateway.start()
        defer { gateway.stop() }
        let healthy = socket.collect(seconds: 1.5)
        #expect(healthy.contains { $0.text.hasPrefix("READY=1") }, "\(healthy)")
        let pings = healthy.filter { $0.text == "WATCHDOG=1" }.count
        #expect(pings >= 4, "\(pings) pings in 1.5 s at a 0.4 s watchdog")

        // Another process holds the write lock: gatewayd's commit waits (busy timeout) and
        // retries, its loop stops going round, and the pings stop.
        let publisher = try Publisher(port: broker.port)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let blocker = try Database(path: gateway.databasePath)
        try blocker.execute("BEGIN IMMEDIATE")
        try await publisher.send("v1/water/wd-1/level", #"{"ts":\#(now),"seq":1,"level_cm":3}"#)
        _ = socket.collect(seconds: 0.5)
        let stalled = socket.collect(seconds: 2)
        #expect(stalled.filter { $0.text == "WATCHDOG=1" }.isEmpty, "pinged while stalled: \(stalled)")
        #expect(gateway.log.contains("event=watchdog_withheld"))

        try blocker.execute("ROLLBACK")
        try waitFor("the reading once the lock is gone", seconds: 15) {
            try gateway.count("SELECT count(*) FROM readings_v") == 1
        }
        let resumed = socket.collect(seconds: 1)
        #expect(resumed.contains { $0.text == "WATCHDOG=1" }, "no pings after recovery")
        #expect(gateway.log.contains("event=watchdog_resumed"))

        gateway.stop()
        let stopping = socket.collect(seconds: 0.5)
        #expect(stopping.contains { $0.text.hasPrefix("STOPPING=1") }, "\(stopping)")
    }

    /// READY does not wait for the broker; `systemctl status` (STATUS=) says whether it is
    /// connected, and nothing sent later overwrites that with a stale word.
    @Test func statusSaysWhetherTheBrokerIsConnected() throws {
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: broker.port)
        let socket = try NotifySocket(path: scratch.file("notify.sock"))
        gateway.environment = ["NOTIFY_SOCKET": socket.path]
        try gateway.start()
        defer { gateway.stop() }
        let connected = "STATUS=ingesting; broker connected"
        let upToConnected = socket.collect(seconds: 10) { $0 == connected }
        #expect(upToConnected.last == connected, "\(upToConnected)")
        // The broker goes away: the next status says so (the rate timer looks every 2 s).
        _ = broker.child.stop()
        let afterStop = socket.collect(seconds: 10) { $0.hasPrefix("STATUS=degraded") }
        #expect(afterStop.last?.hasPrefix("STATUS=degraded: broker unreachable") == true, "\(afterStop)")
        #expect(!afterStop.dropLast().contains { $0.contains("STATUS=") }, "a stale status came later: \(afterStop)")
    }
}
