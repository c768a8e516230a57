public import Logging
import Synchronization

/// Parts started in the order given and stopped in the reverse order, so each part stops
/// after everything that feeds it has (the broker client before the ingest thread that
/// drains it, that before the forwarder that sends what it committed). A part that fails to
/// start stops the ones already started, in reverse, before the error is rethrown. Each part
/// is stopped at most once, however often `stop` is called (a failed start, then shutdown).
public final class ServiceGroup: Sendable {
    public let services: [any Service]
    private let logger: Logger
    /// How many of `services` are running, from the first.
    private let running = Mutex(0)

    public init(_ services: [any Service], logger: Logger) {
        self.services = services
        self.logger = logger
    }

    public func start() throws {
        for (index, service) in services.enumerated() {
            let began = monotonicNanos()
            do {
                try service.start()
                running.withLock { $0 = index + 1 }
            } catch {
                logger.error("service_start_failed", [("service", service.serviceName), ("error", "\(error)")])
                stop()
                throw error
            }
            logger.debug(
                "service_started",
                [("service", service.serviceName), ("duration_ms", String((monotonicNanos() - began) / 1_000_000))])
        }
    }

    /// Stops every part that is running, last started first.
    public func stop() {
        let started = running.withLock { count in
            defer { count = 0 }
            return count
        }
        for service in services[..<started].reversed() {
            let began = monotonicNanos()
            service.stop()
            logger.info(
                "service_stopped",
                [("service", service.serviceName), ("duration_ms", String((monotonicNanos() - began) / 1_000_000))])
        }
    }
}
