public import Logging

/// Parts started in the order given and stopped in the reverse order, so each part stops
/// after everything that feeds it has (the broker client before the ingest thread that
/// drains it, that before the forwarder that sends what it committed). A part that fails to
/// start stops the ones already started, in reverse, before the error is rethrown.
public final class ServiceGroup: Sendable {
    public let services: [any Service]
    private let logger: Logger

    public init(_ services: [any Service], logger: Logger) {
        self.services = services
        self.logger = logger
    }

    public func start() throws {
        for (index, service) in services.enumerated() {
            let began = monotonicNanos()
            do {
                try service.start()
            } catch {
                logger.error("service_start_failed", [("service", service.serviceName), ("error", "\(error)")])
                stop(services[..<index])
                throw error
            }
            logger.debug(
                "service_started",
                [("service", service.serviceName), ("duration_ms", String((monotonicNanos() - began) / 1_000_000))])
        }
    }

    /// Stops every part, last started first.
    public func stop() { stop(services[...]) }

    private func stop(_ started: ArraySlice<any Service>) {
        for service in started.reversed() {
            let began = monotonicNanos()
            service.stop()
            logger.info(
                "service_stopped",
                [("service", service.serviceName), ("duration_ms", String((monotonicNanos() - began) / 1_000_000))])
        }
    }
}
