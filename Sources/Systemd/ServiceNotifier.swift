#if canImport(Glibc)
    import Glibc
#endif

/// systemd's notify protocol, spoken directly: one datagram per state change to the
/// `AF_UNIX` socket named in `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
///
/// Written here rather than linking libsystemd: the protocol is a single `sendto`, and the
/// gateway should not depend on a library that boards without systemd do not have. When the
/// service is not started by systemd (no `NOTIFY_SOCKET`), every call does nothing.
public final class ServiceNotifier: Sendable {
    private let address: [UInt8]?
    /// The interval systemd expects pings at (`WATCHDOG_USEC`), if the watchdog is on for us.
    public let watchdogIntervalNanos: UInt64?

    public init(environment: [String: String]) {
        if let path = environment["NOTIFY_SOCKET"], !path.isEmpty, path.utf8.count < 108,
            path.hasPrefix("/") || path.hasPrefix("@")
        {
            address = Array(path.utf8)
        } else {
            address = nil
        }
        // WATCHDOG_PID, when set, names the process the watchdog is for.
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if forUs, let text = environment["WATCHDOG_USEC"], let micros = UInt64(text), micros > 0 {
            watchdogIntervalNanos = micros * 1000
        } else {
            watchdogIntervalNanos = nil
        }
    }

    public var isEnabled: Bool { address != nil }

    /// Sends `READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=…` (newline-separated pairs).
    /// Returns false when there is no socket or the datagram could not be sent.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let address else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        let length = withUnsafeMutableBytes(of: &socketAddress.sun_path) { path -> Int in
            path.copyBytes(from: address)
            // "@name": the abstract namespace, whose names start with a NUL byte.
            if address.first == UInt8(ascii: "@") { path[0] = 0 }
            return address.count
        }
        let size = socklen_t(MemoryLayout<sa_family_t>.size + length + (address.first == UInt8(ascii: "@") ? 0 : 1))
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &socketAddress) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), raw, size) }
            }
        }
        return sent == message.count
    }
}
