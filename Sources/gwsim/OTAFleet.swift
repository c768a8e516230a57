import Crypto
import Foundation
import Logging
import OTA
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `options.vehicles` OTA vehicles, each on its own MQTT connection and thread, until
/// `shouldStop` says so; prints one summary line.
final class OTAFleet: Sendable {
    let stopping = Atomic<Bool>(false)
    let stats = FleetStats()

    func run(options: OTAOptions, host: String, port: Int, duration: Double, shouldStop: () -> Bool) -> Int32 {
        var keys: [Ed25519.PublicKey] = []
        for text in options.trustedKeys {
            guard let raw = Hex.decode(text), let key = try? Ed25519.PublicKey(raw: raw) else {
                FileHandle.standardError.write(Data("gwsim: --ota-trusted-key \(text) is not a 64-hex Ed25519 key\n".utf8))
                return 64
            }
            keys.append(key)
        }
        guard !keys.isEmpty, !options.directory.isEmpty else {
            FileHandle.standardError.write(Data("gwsim: OTA vehicles need --ota-dir and at least one --ota-trusted-key\n".utf8))
            return 64
        }
        let policy = TrustPolicy(keys: keys, threshold: options.threshold)
        let logger = Logger(level: .warning)
        var vehicles: [OTAVehicle] = []
        do {
            for index in 0..<options.vehicles {
                let vehicle = try OTAVehicle(
                    index: index, options: options, host: host, port: port, policy: policy, stats: stats, logger: logger)
                try vehicle.connect()
                vehicles.append(vehicle)
            }
        } catch {
            FileHandle.standardError.write(Data("gwsim: \(error)\n".utf8))
            return 1
        }
        let finished = DispatchGroup()
        for vehicle in vehicles {
            finished.enter()
            let thread = Thread { [self] in
                vehicle.run(stop: stopping)
                finished.leave()
            }
            thread.stackSize = 512 * 1024
            thread.start()
        }
        print("gwsim: \(vehicles.count) OTA vehicles running (first VIN \(vehicles.first?.vin.value ?? "-"))")
        let started = Date()
        while !shouldStop() && (duration <= 0 || Date().timeIntervalSince(started) < duration) {
            usleep(100_000)
        }
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        print("ota vehicles=\(vehicles.count) \(stats.summary)")
        return 0
    }
}
