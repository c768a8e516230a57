public import Crypto
import Dispatch
public import Logging
import Synchronization
import Threads

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP/1.1 server on POSIX sockets: a Dispatch read source accepts, and each connection
/// gets a thread of its own.
///
/// A thread per connection with blocking-style I/O under `poll` deadlines keeps every
/// timeout local: a slow or hostile client holds its own thread until its header or idle
/// timeout fires and cannot delay anyone else. (Dispatch's worker pool is not for blocking
/// work: 64 slow clients would starve every other queue in the process, signal handling
/// included.) The connection cap bounds the threads, each with a small stack; past it, new
/// clients get a 503 at once.
public final class HTTPServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// `host:port`; `[::1]:8080` for IPv6. Port 0 picks a free port (see `port`).
        public var listen = "127.0.0.1:8080"
        public var limits = RequestLimits()
        public var maxConnections = 256
        /// From a request's first byte to the end of its head (slowloris bound).
        public var headerTimeoutMs = 10_000
        /// An open connection with no request in progress is closed after this.
        public var idleTimeoutMs = 60_000
        /// Longest pause allowed while a body is arriving or a response is leaving.
        public var ioTimeoutMs = 30_000
        public var tls: TLSServerContext?

        public init() {}
    }

    public struct Stats: Sendable {
        public var connectionsAccepted: Int64 = 0
        public var connectionsRefused: Int64 = 0
        public var connectionsOpen: Int64 = 0
        public var timeouts: Int64 = 0
    }

    public let configuration: Configuration
    let handler: any HTTPHandler
    let logger: Logger
    private var listener: Int32 = -1
    public private(set) var port: Int = 0
    private let stopping = Atomic<Bool>(false)
    private let state = Mutex(State())
    private var acceptSource: (any DispatchSourceRead)?
    private let acceptQueue = DispatchQueue(label: "http-accept")
    private let acceptDone = DispatchSemaphore(value: 0)

    struct State {
        var open: Set<Int32> = []
        var stats = Stats()
    }

    public init(configuration: Configuration, handler: any HTTPHandler, logger: Logger) {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger.with("component", "http")
    }

    public var stats: Stats { state.withLock { $0.stats } }

    /// Binds and starts accepting. Throws with the address and the system's reason.
    public func start() throws(HTTPServerError) {
        let (host, portNumber) = try Self.splitListen(configuration.listen)
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var info: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(portNumber), &hints, &info) == 0, let address = info else {
            throw .listen(configuration.listen, "not a numeric IPv4 or IPv6 address and port")
        }
        defer { freeaddrinfo(info) }
        let fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .listen(configuration.listen, String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .listen(configuration.listen, reason)
        }
        guard listen(fd, 512) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .listen(configuration.listen, reason)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        port = Int(
            storage.ss_family == sa_family_t(AF_INET6)
                ? withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                }
                : withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
                })
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        listener = fd
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: acceptQueue)
        source.setEventHandler { [self] in acceptPending() }
        source.setCancelHandler { [self] in
            close(listener)
            acceptDone.signal()
        }
        acceptSource = source
        source.resume()
        logger.info(
            "http_listening",
            [
                ("http.listen", configuration.listen), ("http.port", String(port)),
                ("http.tls", configuration.tls == nil ? "off" : "on"),
            ])
    }

    /// Stops accepting, ends every open connection (waiting up to 2 s for them to finish).
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing), let acceptSource else { return }
        acceptSource.cancel()
        acceptDone.wait()
        state.withLock { state in
            for fd in state.open { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        }
        let deadline = monotonicNanos() + 2_000_000_000
        while state.withLock({ !$0.open.isEmpty }), monotonicNanos() < deadline { usleep(10_000) }
        logger.info("http_stopped")
    }

    static func splitListen(_ listen: String) throws(HTTPServerError) -> (String, Int) {
        var host: Substring
        var portText: Substring
        if listen.hasPrefix("[") {
            guard let close = listen.firstIndex(of: "]"), listen[listen.index(after: close)...].hasPrefix(":") else {
                throw .listen(listen, "expected [IPv6]:port")
            }
            host = listen[listen.index(after: listen.startIndex)..<close]
            portText = listen[listen.index(close, offsetBy: 2)...]
        } else {
            guard let colon = listen.lastIndex(of: ":") else { throw .listen(listen, "expected host:port") }
            host = listen[..<colon]
            portText = listen[listen.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else {
            throw .listen(listen, "the port must be 0 to 65535")
        }
        return (String(host), port)
    }

    /// Accepts every connection waiting on the listener (the source fires once for several).
    private func acceptPending() {
        while !stopping.load(ordering: .acquiring) {
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept(listener, $0, &length)
                }
            }
            guard fd >= 0 else {
                if errno == EINTR { continue }
                if errno == EMFILE || errno == ENFILE {
                    // Out of descriptors: the listener stays readable, so pause the source
                    // rather than spin, and try again shortly.
                    logger.error("http_accept_failed", [("error", String(cString: strerror(errno)))])
                    acceptSource?.suspend()
                    acceptQueue.asyncAfter(deadline: .now() + .milliseconds(100)) { [self] in acceptSource?.resume() }
                }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let admitted = state.withLock { state -> Bool in
                guard state.open.count < configuration.maxConnections else {
                    state.stats.connectionsRefused += 1
                    return false
                }
                state.open.insert(fd)
                state.stats.connectionsAccepted += 1
                state.stats.connectionsOpen = Int64(state.open.count)
                return true
            }
            let peer = Self.describe(&address)
            guard admitted else {
                refuse(fd, peer: peer)
                continue
            }
            let started = DetachedThread.start(name: "http-conn", stackSize: 512 * 1024) { [self] in
                let transport = serve(fd: fd, peer: peer)
                state.withLock { state in
                    state.open.remove(fd)
                    state.stats.connectionsOpen = Int64(state.open.count)
                }
                if let transport { transport.close() } else { close(fd) }
            }
            if !started {
                // No thread for it (the process's thread limit, or memory): refused with a 503
                // as past the connection cap, and said so.
                logger.error(
                    "http_thread_unavailable",
                    [
                        ("peer", peer),
                        (
                            "detail",
                            "the system would not create a thread for this connection; check ulimit -u and memory"
                        ),
                    ])
                state.withLock { state in
                    state.open.remove(fd)
                    state.stats.connectionsOpen = Int64(state.open.count)
                }
                refuse(fd, peer: peer)
            }
        }
    }

    /// Past the connection cap: a best-effort 503 without blocking the accept thread.
    private func refuse(_ fd: Int32, peer: String) {
        if configuration.tls == nil {
            var response = handler.errorResponse(
                .unavailable("the gateway serves \(configuration.maxConnections) connections at most; retry shortly"))
            response.headers.set("Retry-After", "1")
            if case .bytes(let body) = response.body {
                let bytes =
                    ResponseEncoder.head(
                        response, version: .http11, contentLength: body.count, keepAlive: false, date: httpDate())
                    + body
                _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
        }
        close(fd)
        logger.warning(
            "http_connection_refused",
            [("peer", peer), ("http.max_connections", String(configuration.maxConnections))])
        handler.finished(
            Exchange(label: "(refused)", method: "", status: 503, durationNanos: 0, peer: peer, error: nil))
    }

    /// Runs one connection to its end; returns the transport for the caller to close.
    private func serve(fd: Int32, peer: String) -> Transport? {
        var tls: TLSSession?
        if let context = configuration.tls {
            do {
                tls = try TLSSession(context: context, socket: fd)
            } catch {
                logger.error("http_tls_session_failed", [("peer", peer), ("error", error.description)])
                return nil
            }
        }
        let transport = Transport(fd: fd, tls: tls)
        do {
            try transport.handshake(deadline: monotonicNanos() + UInt64(configuration.headerTimeoutMs) * 1_000_000)
        } catch {
            logger.info("http_tls_handshake_failed", [("peer", peer), ("error", "\(error)")])
            return transport
        }
        Connection(server: self, transport: transport, peer: peer).run()
        return transport
    }

    func countTimeout() {
        state.withLock { $0.stats.timeouts += 1 }
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    static func describe(_ address: inout sockaddr_storage) -> String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo(
                    $0, length, &host, socklen_t(host.count), &service, socklen_t(service.count),
                    NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard result == 0 else { return "?" }
        let hostText = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let serviceText = String(decoding: service.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(hostText):\(serviceText)"
    }
}

public enum HTTPServerError: Error, CustomStringConvertible {
    case listen(String, String)

    public var description: String {
        switch self {
        case .listen(let address, let reason):
            return "http.listen \(address): \(reason); check the address and that no other process holds the port"
        }
    }
}

/// RFC 9110 IMF-fixdate of now.
func httpDate() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    var buffer = [CChar](repeating: 0, count: 40)
    let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
    return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
