public import Crypto
import Logging

#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A small blocking HTTP/1.1 client over the same transport as the server: one request per
/// connection, `Connection: close`. For tools that must trust a private CA (`gwctl --cacert`),
/// which Foundation's client on Linux cannot be told to do.
public struct HTTPClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    public enum ClientError: Error, CustomStringConvertible {
        case badURL(String)
        case connect(String)
        case tls(String)
        case protocolError(String)
        case timedOut

        public var description: String {
            switch self {
            case .badURL(let url): return "not an http:// or https:// URL: \(url)"
            case .connect(let why): return why
            case .tls(let why): return "TLS: \(why)"
            case .protocolError(let why): return "the answer is not HTTP/1.1: \(why)"
            case .timedOut: return "no answer in time"
            }
        }
    }

    let tls: TLSClientContext?
    let timeoutMs: Int
    /// Responses larger than this are refused (a status page or a series, not a download).
    public var maxBodyBytes = 64 * 1024 * 1024

    public init(tls: TLSClientContext?, timeoutMs: Int = 15_000) {
        self.tls = tls
        self.timeoutMs = timeoutMs
    }

    public func send(
        _ method: String, _ url: URL, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws(ClientError) -> Response {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = url.host,
            !host.isEmpty
        else { throw .badURL(url.absoluteString) }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        let fd = try connect(host: host, port: port, deadline: deadline)
        var session: TLSSession?
        if scheme == "https" {
            guard let tls else {
                close(fd)
                throw .tls("an https URL needs a CA to verify the gateway with")
            }
            do {
                session = try TLSSession(client: tls, socket: fd, host: host)
            } catch {
                close(fd)
                throw .tls(error.description)
            }
        }
        let transport = Transport(fd: fd, tls: session)
        defer { transport.close() }
        do {
            try transport.handshake(deadline: deadline)
        } catch {
            throw .tls("handshake with \(host):\(port) failed: \(error); is --cacert the CA that signed it?")
        }
        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query { target += "?" + query }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(ResponseEncoder.sanitized(value))\r\n" }
        if !body.isEmpty || method == "PUT" || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        do {
            try transport.write(Array(head.utf8) + body, deadline: deadline)
        } catch {
            throw .connect("sending to \(host):\(port) failed: \(error)")
        }
        return try readResponse(transport, deadline: deadline)
    }

    private func readResponse(_ transport: Transport, deadline: UInt64) throws(ClientError) -> Response {
        var buffer: [UInt8] = []
        var headEnd: Int?
        while headEnd == nil {
            do {
                _ = try transport.read(into: &buffer, deadline: deadline)
            } catch .timedOut {
                throw .timedOut
            } catch {
                throw .protocolError("the connection closed before the response head")
            }
            if buffer.count > 64 * 1024 { throw .protocolError("response head over 64 KiB") }
            headEnd = Self.find([13, 10, 13, 10], in: buffer).map { $0 + 4 }
        }
        let lines = String(decoding: buffer[0..<(headEnd! - 4)], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw .protocolError("status line \"\(lines[0].prefix(64))\"")
        }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            // Optional whitespace around a field value: spaces and tabs (RFC 9110, 5.6.3).
            let value = line[line.index(after: colon)...]
            let start = value.firstIndex { $0 != " " && $0 != "\t" } ?? value.endIndex
            let end = value.lastIndex { $0 != " " && $0 != "\t" }.map(value.index(after:)) ?? start
            headers.add(String(line[..<colon]), String(value[start..<max(start, end)]))
        }
        var rest = Array(buffer[headEnd!...])
        if headers.tokens("transfer-encoding").contains("chunked") {
            var decoder = ChunkedDecoder(limit: maxBodyBytes)
            var offset = 0
            while true {
                do {
                    offset += try decoder.feed(rest, from: offset)
                } catch {
                    throw .protocolError("bad chunked body: \(error)")
                }
                if decoder.isDone { return Response(status: status, headers: headers, body: decoder.body) }
                rest.removeFirst(offset)
                offset = 0
                do { _ = try transport.read(into: &rest, deadline: deadline) } catch {
                    throw .protocolError("the connection closed inside a chunked body")
                }
            }
        }
        if let lengthText = headers["content-length"] {
            guard let length = Int(lengthText), length >= 0, length <= maxBodyBytes else {
                throw .protocolError("Content-Length \(lengthText.prefix(20))")
            }
            while rest.count < length {
                do { _ = try transport.read(into: &rest, deadline: deadline) } catch {
                    throw .protocolError("the body ended after \(rest.count) of \(length) bytes")
                }
            }
            return Response(status: status, headers: headers, body: Array(rest.prefix(length)))
        }
        while true {
            do {
                _ = try transport.read(into: &rest, deadline: deadline)
            } catch .closed {
                return Response(status: status, headers: headers, body: rest)
            } catch {
                throw .protocolError("\(error)")
            }
            if rest.count > maxBodyBytes { throw .protocolError("body over \(maxBodyBytes) bytes") }
        }
    }

    private func connect(host: String, port: Int, deadline: UInt64) throws(ClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var info: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &info) == 0, let first = info else {
            throw .connect("cannot resolve \(host)")
        }
        defer { freeaddrinfo(info) }
        var lastError = "no address for \(host)"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let address = candidate {
            candidate = address.pointee.ai_next
            let fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if Glibc.connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return fd }
            if errno == EINPROGRESS {
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let remaining = deadline > monotonicNanos() ? Int32((deadline - monotonicNanos()) / 1_000_000) : 0
                if poll(&descriptor, 1, remaining) > 0 {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    if error == 0 { return fd }
                    lastError = "cannot connect to \(host):\(port): \(String(cString: strerror(error)))"
                } else {
                    lastError = "cannot connect to \(host):\(port): no answer in time"
                }
            } else {
                lastError = "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))"
            }
            close(fd)
        }
        throw .connect(lastError)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return start }
        }
        return nil
    }
}
