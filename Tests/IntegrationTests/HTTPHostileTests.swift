import Foundation
import Synchronization
import Testing

/// Malformed and hostile requests against the real gatewayd: each gets its status, and the
/// server keeps serving a well-behaved client throughout.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct HTTPHostileTests {
    static let http = #", "header_timeout_ms": 1000, "idle_timeout_ms": 1500"#
    static let good = "GET /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n"

    /// (name, bytes sent, expected status). Every case runs on a fresh connection.
    static let cases: [(String, [UInt8], Int)] = {
        func text(_ s: String) -> [UInt8] { Array(s.utf8) }
        let longTarget = "GET /v1/" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: gw\r\n\r\n"
        let bigHeader =
            "GET /v1/health HTTP/1.1\r\nHost: gw\r\nX-Big: " + String(repeating: "b", count: 40_000) + "\r\n\r\n"
        let manyHeaders =
            "GET /v1/health HTTP/1.1\r\nHost: gw\r\n" + (0..<120).map { "X-\($0): 1\r\n" }.joined() + "\r\n"
        return [
            ("garbage line", text("GARBAGE\r\n\r\n"), 400),
            ("no version", text("GET /v1/health\r\nHost: gw\r\n\r\n"), 400),
            ("missing space", text("GET/v1/health HTTP/1.1\r\nHost: gw\r\n\r\n"), 400),
            ("no Host", text("GET /v1/health HTTP/1.1\r\n\r\n"), 400),
            ("two Hosts", text("GET /v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400),
            ("HTTP/9.9", text("GET /v1/health HTTP/9.9\r\nHost: gw\r\n\r\n"), 505),
            ("unknown method", text("BREW /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n"), 501),
            ("bare LF", text("GET /v1/health HTTP/1.1\nHost: gw\n\n"), 400),
            ("request line over 8 KiB", text(longTarget), 414),
            ("header over 32 KiB", text(bigHeader), 431),
            ("120 header fields", text(manyHeaders), 431),
            (
                "header injection via bare CR",
                text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nX: a\rSet-Cookie: b\r\n\r\n"), 400
            ),
            ("obs-fold", text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nX: a\r\n b\r\n\r\n"), 400),
            ("space before colon", text("GET /v1/health HTTP/1.1\r\nHost : gw\r\n\r\n"), 400),
            ("header name not a token", text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nX[]: 1\r\n\r\n"), 400),
            ("NUL in header", text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nX: a\u{0}\r\n\r\n"), 400),
            (
                "smuggling: CL and TE",
                text(
                    "POST /v1/health HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                ),
                400
            ),
            (
                "smuggling: two CLs",
                text("POST /v1/health HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"), 400
            ),
            (
                "smuggling: TE in HTTP/1.0",
                text("POST /v1/health HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400
            ),
            ("TE gzip", text("POST /v1/health HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501),
            ("negative CL", text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nContent-Length: -1\r\n\r\n"), 400),
            (
                "huge CL", text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nContent-Length: 99999999999999999999\r\n\r\n"),
                400
            ),
            ("body too large", text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n"), 413),
            (
                "bad chunk size",
                text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 400
            ),
            (
                "chunk size overflow",
                text("GET /v1/health HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"),
                400
            ),
            (
                "chunked body over the limit",
                text(
                    "GET /v1/health HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
                413
            ),
            ("POST without length", text("POST /v1/devices HTTP/1.1\r\nHost: gw\r\n\r\n"), 411),
            (
                "non-UTF-8 raw byte in target",
                [UInt8]("GET /v1/".utf8) + [0xFF, 0xFE] + [UInt8](" HTTP/1.1\r\nHost: gw\r\n\r\n".utf8), 400
            ),
            ("non-UTF-8 escaped path", text("GET /v1/devices/%FF%FE HTTP/1.1\r\nHost: gw\r\n\r\n"), 400),
            (
                "non-UTF-8 header value",
                [UInt8]("GET /v1/health HTTP/1.1\r\nHost: gw\r\nX: ".utf8) + [0xC3, 0x28] + [13, 10, 13, 10], 400
            ),
            ("path traversal", text("GET /v1/../../etc/passwd HTTP/1.1\r\nHost: gw\r\n\r\n"), 400),
            ("encoded traversal", text("GET /v1/%2e%2e/metrics HTTP/1.1\r\nHost: gw\r\n\r\n"), 400),
            ("encoded slash", text("GET /v1/devices/a%2Fb HTTP/1.1\r\nHost: gw\r\n\r\n"), 400),
            ("bad escape in query", text("GET /v1/health?x=%ZZ HTTP/1.1\r\nHost: gw\r\n\r\n"), 400),
            ("TLS hello on the plain port", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03], 400),
            ("unknown route", text("GET /admin HTTP/1.1\r\nHost: gw\r\n\r\n"), 404),
            ("wrong method", text("DELETE /v1/health HTTP/1.1\r\nHost: gw\r\n\r\n"), 405),
            ("unknown query parameter", text("GET /v1/health?verbose=1 HTTP/1.1\r\nHost: gw\r\n\r\n"), 400),
            ("absolute form", text("GET http://gw/v1/health HTTP/1.1\r\nHost: gw\r\n\r\n"), 200),
            ("HTTP/1.0 without Host", text("GET /v1/health HTTP/1.0\r\n\r\n"), 200),
        ]
    }()

    @Test func everyHostileRequestGetsItsStatusAndOthersAreServed() throws {
        #expect(Self.cases.count >= 30)
        let live = try LiveGateway(http: Self.http)
        defer { withExtendedLifetime(live) {} }
        let port = live.gateway.httpPort

        // A well-behaved client polls throughout; every one of its requests must succeed.
        let stop = Atomic<Bool>(false)
        let served = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            while !stop.load(ordering: .acquiring) {
                if let response = try? rawRequest(port: port, Self.good), response.status == 200 {
                    served.add(1, ordering: .relaxed)
                } else {
                    failed.add(1, ordering: .relaxed)
                }
                usleep(5_000)
            }
            done.signal()
        }

        for (name, bytes, status) in Self.cases {
            let connection = try RawConnection(port: port)
            connection.send(bytes)
            let response = connection.readResponses(1, seconds: 5).first
            #expect(response?.status == status, "\(name): got \(response.map { String($0.status) } ?? "nothing")")
            if status >= 400 {
                #expect(
                    response?.text.contains("\"error\"") == true, "\(name): errors are JSON: \(response?.text ?? "")")
                if status != 404 && status != 405 && status != 400 || name.contains("smuggling") {
                    #expect(connection.isClosedByPeer(seconds: 3), "\(name): the connection closes after the error")
                }
            }
        }
        stop.store(true, ordering: .releasing)
        done.wait()
        #expect(failed.load(ordering: .relaxed) == 0)
        #expect(served.load(ordering: .relaxed) > 0)
        #expect(live.gateway.child?.isRunning == true)
        #expect(live.gateway.log.contains("event=http_request_refused"))
    }

    @Test func slowClientsTimeOutWithoutStallingOthers() throws {
        let live = try LiveGateway(http: Self.http)
        defer { withExtendedLifetime(live) {} }
        let port = live.gateway.httpPort
        // Slowloris: half a head, then a byte now and then.
        let slow = try RawConnection(port: port)
        slow.send("GET /v1/health HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
        // Silent: connects and sends nothing.
        let silent = try RawConnection(port: port)
        // Meanwhile another client is answered at once.
        let started = Date()
        let fast = try rawRequest(port: port, Self.good)
        #expect(fast?.status == 200)
        #expect(Date().timeIntervalSince(started) < 0.9, "answered before the slow client's timeout")
        for _ in 0..<3 {
            usleep(300_000)
            slow.send("a")
        }
        let timedOut = slow.readResponses(1, seconds: 5).first
        #expect(timedOut?.status == 408)
        #expect(silent.isClosedByPeer(seconds: 5), "an idle connection with no request is closed")
        // Keep-alive: two requests on one connection, then it idles out.
        let keep = try RawConnection(port: port)
        keep.send(Self.good + Self.good)
        #expect(keep.readResponses(2).map(\.status) == [200, 200])
        #expect(keep.isClosedByPeer(seconds: 5))
        #expect(try rawRequest(port: port, Self.good)?.status == 200)
        let metrics = try #require(try rawRequest(port: port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")?.text)
        #expect(!metrics.contains("gateway_http_timeouts_total 0"), "the slow and silent clients were counted")
    }

    @Test func connectionsPastTheCapGet503() throws {
        let live = try LiveGateway(http: Self.http + #", "max_connections": 4"#)
        defer { withExtendedLifetime(live) {} }
        let port = live.gateway.httpPort
        var held: [RawConnection] = []
        for _ in 0..<4 {
            let connection = try RawConnection(port: port)
            connection.send(Self.good)
            #expect(connection.readResponses(1).first?.status == 200)
            held.append(connection)
        }
        let refused = try rawRequest(port: port, Self.good)
        #expect(refused?.status == 503)
        #expect(refused?.headers["retry-after"] == "1")
        held.removeAll()
        try waitFor("a slot to free up") { try rawRequest(port: port, Self.good)?.status == 200 }
        #expect(live.gateway.log.contains("event=http_connection_refused"))
        // The held connections close on the server's side one by one: this request, too, may find
        // every slot still taken and get a 503, so it is asked until it is served.
        var metrics = ""
        try waitFor("the metrics served") {
            guard let response = try rawRequest(port: port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"),
                response.status == 200
            else { return false }
            metrics = response.text
            return true
        }
        // At least the one above; the wait for a free slot may have been refused too.
        let refusedTotal = metrics.split(separator: "\n")
            .first { $0.hasPrefix("gateway_http_connections_refused_total ") }
            .flatMap { Int($0.split(separator: " ")[1]) } ?? 0
        #expect(refusedTotal >= 1)
    }
}
