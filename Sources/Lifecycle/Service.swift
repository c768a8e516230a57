/// A long-running part of gatewayd (a thread, a connection, a listener) with one lifecycle
/// shape, as swift-service-lifecycle's `Service` has, without async: a `ServiceGroup` starts
/// the parts in order and stops them in the reverse order.
public protocol Service: AnyObject, Sendable {
    /// The name in the start and stop log lines.
    var serviceName: String { get }
    /// Starts the part's threads and returns; throws when it cannot run at all.
    func start() throws
    /// Finishes what the part holds and returns once its threads have ended. Called once,
    /// after the parts started after it have stopped.
    func stop()
}
