import Foundation
import JSON
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Location privacy (SECURITY.md, "Data protection"): positions kept only for
/// `privacy.position_retention_s`, whatever room the ring has.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct PrivacyTests {
    /// Positions arrive, the ring has room for years of them, and the clock moves two hours on:
    /// the sweep erases every position (rows, the API's latest values, the bytes in the file)
    /// while the gauges' levels and the vehicle's other readings stay.
    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: FaultTests.faketime),
            "needs libfaketime (apt-get install faketime)"),
        .enabled(
            if: ProcessInfo.processInfo.environment["TG_SANITIZER"] == nil,
            "libfaketime cannot preload into an ASan build"))
    func positionsAreErasedAfterTheRetentionWhileTheRingHasRoom() async throws {
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(scratch: scratch, brokerPort: broker.port)
        let clock = try gateway.fakeWallClock()
        try gateway.start()
        defer { gateway.stop() }
        let publisher = try Publisher(port: broker.port)
        let vin = "1HGCM82633A004352"
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // A latitude whose 8 bytes are easy to find in the file.
        let latitude = 3.123456789012
        for seq in 1...3 {
            try await publisher.send(
                "v1/obd/\(vin)/gps",
                #"{"ts":\#(now + Int64(seq)),"seq":\#(seq),"lat":\#(latitude),"lon":101.69,"speed_kmh":20}"#)
        }
        try await publisher.send("v1/obd/\(vin)/pids", #"{"ts":\#(now + 4),"seq":4,"pids":{"0D":"32"}}"#)
        try await publisher.send("v1/water/priv-drain/level", #"{"ts":\#(now),"seq":1,"level_cm":50}"#)
        let positions =
            "SELECT count(*) FROM readings_v WHERE signal IN ('lat_deg', 'lon_deg', 'gps_speed_kmh', 'heading_deg')"
        try waitFor("the positions stored") { try gateway.count(positions) == 9 }
        try waitFor("the gauge stored") {
            try gateway.count("SELECT count(*) FROM readings_v WHERE device = 'priv-drain'") == 1
        }
        #expect(try FaultTests.health(gateway)["privacy"]?["oldest_position_age_s"]?.number ?? -1 >= 0)
        let pattern = withUnsafeBytes(of: latitude.bitPattern.bigEndian) { Array($0) }
        #expect(
            Self.fileContains(gateway.databasePath, pattern)
                || Self.fileContains(gateway.databasePath + "-wal", pattern))

        try "+2h".write(toFile: clock, atomically: true, encoding: .utf8)
        try waitFor("the positions erased", seconds: 30) { try gateway.count(positions) == 0 }
        #expect(try gateway.count("SELECT count(*) FROM readings_v WHERE device = 'priv-drain'") == 1)
        #expect(
            try gateway.count("SELECT count(*) FROM readings_v WHERE device = '\(vin)' AND signal = 'speed_kmh'") == 1)
        // The rows go in the sweep's commit; its counters are updated just after it.
        var privacy: JSONValue?
        try waitFor("the sweep's counters") {
            privacy = try FaultTests.health(gateway)["privacy"]
            return privacy?["positions_erased"] == .int(9)
        }
        #expect(privacy?["oldest_position_age_s"] == .null, "\(String(describing: privacy))")
        #expect((try FaultTests.metric(gateway, "gateway_positions_erased_total") ?? 0) == 9)
        #expect(try gateway.database().scalarText("PRAGMA integrity_check") == "ok")
        try waitFor("the write-ahead log truncated") { !Self.fileContains(gateway.databasePath + "-wal", pattern) }
        #expect(!Self.fileContains(gateway.databasePath, pattern), "the latitude's bytes are still in the file")
        _ = broker
    }

    static func fileContains(_ path: String, _ pattern: [UInt8]) -> Bool {
        guard let data = FileManager.default.contents(atPath: path), data.count >= pattern.count else { return false }
        let bytes = [UInt8](data)
        let first = pattern[0]
        var index = 0
        while index <= bytes.count - pattern.count {
            if bytes[index] == first && Array(bytes[index..<(index + pattern.count)]) == pattern { return true }
            index += 1
        }
        return false
    }
}
