import Foundation
import Logging
import Testing

@testable import HTTP

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The server on its own, with a small handler: request bodies (Content-Length and chunked),
/// streamed responses, HEAD, HTTP/1.0, 100-continue, pipelining. Real sockets on loopback.
///
/// Each test takes milliseconds alone, but shares the two cores' task pool with the integration
/// suites, whose waits block a pool thread: under ASan in CI one waited 100 s for a thread. The
/// limit is the integration suites' 4 minutes, still a guard against a hang.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct HTTPServerTests {
    struct Echo: HTTPHandler {
        func admit(_ head: RequestHead) -> Admission {
            switch (head.method, head.path) {
            case ("POST", "/echo"): return .accept(maxBodyBytes: 1 << 20, label: "/echo")
            case ("GET", "/stream"), ("HEAD", "/stream"): return .accept(maxBodyBytes: 0, label: "/stream")
            case ("GET", "/small"), ("HEAD", "/small"): return .accept(maxBodyBytes: 0, label: "/small")
            default: return .reject(.text(.notFound, "no"), label: "(unmatched)")
            }
        }

        func respond(to request: HTTPRequest) -> HTTPResponse {
            switch request.head.path {
            case "/echo":
                var headers = HTTPHeaders()
                headers.add("X-Body-Bytes", String(request.body.count))
                return HTTPResponse(status: .ok, headers: headers, body: request.body)
            case "/stream":
                return HTTPResponse(status: .ok) { writer in
                    for line in 0..<2000 { try writer.write(Array("line \(line)\n".utf8)) }
                }
            default:
                return .text(.ok, "ok")
            }
        }
    }

    func withServer(headerTimeoutMs: Int = 2000, _ body: (Int) async throws -> Void) async throws {
        var configuration = HTTPServer.Configuration()
        configuration.listen = "127.0.0.1:0"
        configuration.headerTimeoutMs = headerTimeoutMs
        let server = HTTPServer(configuration: configuration, handler: Echo(), logger: Logger(level: .critical))
        try server.start()
        defer { server.stop() }
        try await body(server.port)
    }

    func exchange(_ port: Int, _ text: String) throws -> String {
        try exchange(port, [text])
    }

    /// Sends each part after reading what the server said to the previous one (at least one
    /// read), then reads to the end: a client that waits for `100 Continue`.
    func exchange(_ port: Int, _ parts: [String]) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        for (index, part) in parts.enumerated() {
            _ = Array(part.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            if index < parts.count - 1 {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { result.append(contentsOf: buffer[0..<n]) }
            }
        }
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: result, as: UTF8.self)
    }

    @Test func requestBodiesByLengthAndChunked() async throws {
        try await withServer { port in
            let length = try exchange(
                port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            #expect(length.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(length.hasSuffix("\r\n\r\nhello"))
            let chunked = try exchange(
                port,
                "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    + "5\r\nhello\r\n7;note=x\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\n")
            #expect(chunked.contains("X-Body-Bytes: 12\r\n"))
            #expect(chunked.hasSuffix("hello, world"))
            // 100-continue: the interim answer comes before the body is sent.
            let expect = try exchange(
                port,
                [
                    "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
                    "hi",
                ])
            #expect(expect.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"))
            let unknown = try exchange(
                port, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: magic\r\nContent-Length: 2\r\n\r\nhi")
            #expect(unknown.hasPrefix("HTTP/1.1 417 "))
            // A body of a megabyte and one byte more than the route allows.
            let big = String(repeating: "x", count: (1 << 20) + 1)
            let refused = try exchange(port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(big.count)\r\n\r\n")
            #expect(refused.hasPrefix("HTTP/1.1 413 "))
        }
    }

    @Test func streamedResponsesAreChunkedExceptForHTTP10AndHEAD() async throws {
        try await withServer { port in
            let chunked = try exchange(port, "GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(chunked.contains("Transfer-Encoding: chunked\r\n"))
            #expect(!chunked.contains("Content-Length"))
            #expect(chunked.hasSuffix("line 1999\n\r\n0\r\n\r\n"))
            let old = try exchange(port, "GET /stream HTTP/1.0\r\n\r\n")
            #expect(old.hasPrefix("HTTP/1.0 200 OK\r\n"))
            #expect(old.contains("Content-Length: "))
            #expect(old.hasSuffix("line 1999\n"))
            let head = try exchange(port, "HEAD /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(head.hasSuffix("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"))
            // URLSession decodes the chunked body like any other client.
            let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/stream")!)
            #expect(String(decoding: data, as: UTF8.self).split(separator: "\n").count == 2000)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withServer { port in
            let reply = try exchange(
                port,
                "GET /small HTTP/1.1\r\nHost: t\r\n\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                    + "GET /nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            let statuses = reply.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["200", "200", "404"])
            #expect(reply.contains("X-Body-Bytes: 3\r\n"))
        }
    }

    /// Random bytes and mutated requests on real connections, many at once; afterwards the
    /// server still answers a plain request.
    @Test func randomBytesNeitherCrashNorStallTheServer() async throws {
        try await withServer(headerTimeoutMs: 300) { port in
            var state: UInt64 = 42
            func next() -> UInt64 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return state >> 33
            }
            var payloads: [[UInt8]] = []
            for round in 0..<300 {
                var bytes = Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".utf8)
                if round % 3 == 0 {
                    bytes = (0..<Int(next() % 600)).map { _ in UInt8(truncatingIfNeeded: next()) }
                } else {
                    for _ in 0..<(1 + Int(next() % 6)) where !bytes.isEmpty {
                        bytes[Int(next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: next())
                    }
                }
                payloads.append(bytes)
            }
            let sent = payloads
            await withTaskGroup(of: Void.self) { group in
                for lane in 0..<8 {
                    group.addTask {
                        for bytes in sent.enumerated().filter({ $0.offset % 8 == lane }).map(\.element) {
                            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                            var address = sockaddr_in()
                            address.sin_family = sa_family_t(AF_INET)
                            address.sin_port = in_port_t(UInt16(port).bigEndian)
                            address.sin_addr.s_addr = inet_addr("127.0.0.1")
                            _ = withUnsafePointer(to: &address) {
                                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                                }
                            }
                            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                            shutdown(fd, Int32(SHUT_WR))
                            var sink = [UInt8](repeating: 0, count: 4096)
                            var timeout = timeval(tv_sec: 2, tv_usec: 0)
                            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                            while recv(fd, &sink, sink.count, 0) > 0 {}
                            close(fd)
                        }
                    }
                }
            }
            let after = try exchange(port, "GET /small HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(after.hasPrefix("HTTP/1.1 200 OK"))
        }
    }

    @Test func theInHouseClientReadsLengthAndChunkedBodies() async throws {
        try await withServer { port in
            let client = HTTPClient(tls: nil, timeoutMs: 3_000)
            let echo = try client.send(
                "POST", URL(string: "http://127.0.0.1:\(port)/echo")!, headers: [("X-Test", "1")],
                body: Array("payload".utf8))
            #expect(echo.status == 200)
            #expect(String(decoding: echo.body, as: UTF8.self) == "payload")
            let stream = try client.send("GET", URL(string: "http://127.0.0.1:\(port)/stream")!)
            #expect(stream.headers["transfer-encoding"] == "chunked")
            #expect(String(decoding: stream.body, as: UTF8.self).split(separator: "\n").count == 2000)
            let missing = try client.send("GET", URL(string: "http://127.0.0.1:\(port)/nothing?x=1")!)
            #expect(missing.status == 404)
            #expect(throws: HTTPClient.ClientError.self) {
                _ = try client.send("GET", URL(string: "https://127.0.0.1:\(port)/small")!)
            }
        }
    }
}
