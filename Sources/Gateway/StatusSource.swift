import API
import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Where the API reads the gateway's live status: the API is built before the gateway object
/// exists, so it gets this source and the gateway registers itself once initialised.
final class StatusSource: @unchecked Sendable {
    private let lock = Mutex(())
    private weak var gateway: Gateway?

    func attach(_ gateway: Gateway) {
        lock.withLock { _ in self.gateway = gateway }
    }

    func read() -> LiveStatus {
        let gateway = lock.withLock { _ in self.gateway }
        return gateway?.liveStatus() ?? LiveStatus()
    }
}
