import Crypto
import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Why a connection's I/O ended.
enum TransportError: Error {
    case timedOut
    case closed
    case failed(String)
}

/// A connected socket, plain or TLS, read and written against deadlines so that a slow or
/// silent client costs its own thread a timeout and nothing else.
final class Transport {
    let fd: Int32
    let tls: TLSSession?

    init(fd: Int32, tls: TLSSession?) {
        self.fd = fd
        self.tls = tls
    }

    private var closed = false

    /// Closes the socket; the server calls it only after it stopped tracking the descriptor,
    /// so a number the kernel hands out again is never mistaken for this connection.
    func close() {
        guard !closed else { return }
        closed = true
        tls?.shutdown()
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        _ = Glibc.close(fd)
    }

    deinit { close() }

    /// Waits until the socket is readable (or writable); false when the deadline passed.
    func wait(for events: Int16, deadline: UInt64) throws(TransportError) -> Bool {
        while true {
            let now = monotonicNanos()
            guard now < deadline else { return false }
            let ms = Int32(min(UInt64(Int32.max), (deadline - now + 999_999) / 1_000_000))
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&descriptor, 1, ms)
            if ready > 0 { return true }
            if ready < 0, errno != EINTR { throw .failed("poll: \(String(cString: strerror(errno)))") }
        }
    }

    func handshake(deadline: UInt64) throws(TransportError) {
        guard let tls else { return }
        while true {
            let progress: TLSSession.Progress
            do { progress = try tls.handshake() } catch { throw .failed(error.description) }
            switch progress {
            case .done: return
            case .closed: throw .closed
            case .wantRead: guard try wait(for: Int16(POLLIN), deadline: deadline) else { throw .timedOut }
            case .wantWrite: guard try wait(for: Int16(POLLOUT), deadline: deadline) else { throw .timedOut }
            }
        }
    }

    /// Appends what arrives to `buffer`; returns the count (never 0: EOF throws `.closed`).
    func read(into buffer: inout [UInt8], deadline: UInt64) throws(TransportError) -> Int {
        try withUnsafeTemporaryAllocation(byteCount: 16 * 1024, alignment: 1) {
            storage throws(TransportError) -> Int in
            let n = try readSome(storage, deadline: deadline)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: storage[0..<n]))
            return n
        }
    }

    private func readSome(_ storage: UnsafeMutableRawBufferPointer, deadline: UInt64) throws(TransportError) -> Int {
        if let tls {
            while true {
                if tls.pending == 0 {
                    guard try wait(for: Int16(POLLIN), deadline: deadline) else { throw .timedOut }
                }
                let progress: TLSSession.Progress
                do { progress = try tls.read(into: storage) } catch { throw .failed(error.description) }
                switch progress {
                case .done(let n): if n > 0 { return n }
                case .closed: throw .closed
                case .wantRead: continue
                case .wantWrite: guard try wait(for: Int16(POLLOUT), deadline: deadline) else { throw .timedOut }
                }
            }
        }
        while true {
            guard try wait(for: Int16(POLLIN), deadline: deadline) else { throw .timedOut }
            let n = recv(fd, storage.baseAddress, storage.count, 0)
            if n > 0 { return n }
            if n == 0 { throw .closed }
            if errno == EINTR || errno == EAGAIN { continue }
            if errno == ECONNRESET { throw .closed }
            throw .failed("recv: \(String(cString: strerror(errno)))")
        }
    }

    func write(_ bytes: [UInt8], deadline: UInt64) throws {
        try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws in
            var offset = 0
            while offset < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                if let tls {
                    let progress: TLSSession.Progress
                    do { progress = try tls.write(rest) } catch { throw TransportError.failed("\(error)") }
                    switch progress {
                    case .done(let n): offset += n
                    case .closed: throw TransportError.closed
                    case .wantRead:
                        guard try wait(for: Int16(POLLIN), deadline: deadline) else { throw TransportError.timedOut }
                    case .wantWrite:
                        guard try wait(for: Int16(POLLOUT), deadline: deadline) else { throw TransportError.timedOut }
                    }
                    continue
                }
                let n = send(fd, rest.baseAddress, rest.count, Int32(MSG_NOSIGNAL))
                if n > 0 {
                    offset += n
                } else if n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                    guard try wait(for: Int16(POLLOUT), deadline: deadline) else { throw TransportError.timedOut }
                } else {
                    throw errno == EPIPE || errno == ECONNRESET
                        ? TransportError.closed : TransportError.failed("send: \(String(cString: strerror(errno)))")
                }
            }
        }
    }
}
