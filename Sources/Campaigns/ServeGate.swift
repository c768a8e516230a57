import OTA
import Synchronization
import Telemetry

/// Which vehicles may be sent blocks right now: their campaign is running and they hold its
/// offer. The block sender asks before every block, so a pause, a cancel or an abort stops the
/// bytes at once, not after the requests already queued (at a bandwidth cap that can be many
/// seconds of traffic). Its own small lock, never held across I/O.
final class ServeGate: Sendable {
    private let state = Mutex<(running: Set<UInt32>, offered: [VIN: UInt32])>(([], [:]))

    func allows(vin: VIN, campaign: UInt32) -> Bool {
        state.withLock { $0.running.contains(campaign) && $0.offered[vin] == campaign }
    }

    func offered(_ vin: VIN, campaign: UInt32) { state.withLock { $0.offered[vin] = campaign } }

    func withdrawn(_ vin: VIN) { state.withLock { $0.offered[vin] = nil } }

    func campaign(_ id: UInt32, running: Bool) {
        state.withLock { state in
            if running { state.running.insert(id) } else { state.running.remove(id) }
        }
    }
}
