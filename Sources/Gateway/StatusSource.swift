import API
import Foundation

/// Where the API reads the gateway's live status: the API is built before the gateway object
/// exists, so it gets this source and the gateway registers itself once initialised.
final class StatusSource: @unchecked Sendable {
    private let lock = NSLock()
    private weak var gateway: Gateway?

    func attach(_ gateway: Gateway) {
        lock.lock()
        self.gateway = gateway
        lock.unlock()
    }

    func read() -> LiveStatus {
        lock.lock()
        let gateway = gateway
        lock.unlock()
        return gateway?.liveStatus() ?? LiveStatus()
    }
}
