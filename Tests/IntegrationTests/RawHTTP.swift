import Foundation

/// A raw TCP connection to a loopback port, for sending exactly the bytes a test wants,
/// however broken, and reading back what the server says.
final class RawConnection {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(fd)
            throw HarnessError.notFound("a listener on 127.0.0.1:\(port)")
        }
    }

    deinit { close(fd) }

    /// False when the peer already closed (EPIPE/ECONNRESET): that is an answer too.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Everything until the peer closes or `seconds` pass.
    func readAll(seconds: Double = 5) -> [UInt8] {
        var result: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&descriptor, 1, ms) > 0 else { break }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return result
    }

    /// Reads until `count` complete responses arrived (Content-Length framed) or time is up.
    func readResponses(_ count: Int, seconds: Double = 5) -> [RawResponse] {
        var bytes: [UInt8] = []
        var responses: [RawResponse] = []
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while responses.count < count, Date() < deadline {
            while let (response, used) = RawResponse.parse(bytes) {
                responses.append(response)
                bytes.removeFirst(used)
            }
            if responses.count >= count { break }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { break }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        while responses.count < count, let (response, used) = RawResponse.parse(bytes) {
            responses.append(response)
            bytes.removeFirst(used)
        }
        return responses
    }

    /// True once the server closed its side (a read returns EOF or a reset).
    func isClosedByPeer(seconds: Double) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, Int32(seconds * 1000)) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK)) <= 0
    }
}

struct RawResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// One Content-Length framed response from the front of `bytes`, and the bytes it used.
    static func parse(_ bytes: [UInt8]) -> (RawResponse, Int)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4,
            let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<($0 + 4)]) == separator })
        else { return nil }
        let head = String(decoding: bytes[0..<end], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        guard bytes.count >= end + 4 + length else { return nil }
        return (
            RawResponse(status: status, headers: headers, body: Array(bytes[(end + 4)..<(end + 4 + length)])),
            end + 4 + length
        )
    }
}

/// A whole exchange on a fresh connection: send, read one response.
func rawRequest(port: Int, _ text: String, seconds: Double = 5) throws -> RawResponse? {
    let connection = try RawConnection(port: port)
    connection.send(text)
    return connection.readResponses(1, seconds: seconds).first
}
