import Testing

@testable import HTTP

/// The head parser and body framing on byte sequences, one case per rule.
@Suite struct RequestParserTests {
    func head(_ text: String) throws(HTTPError) -> RequestHead {
        var bytes = Array(text.utf8)
        var scanned = 0
        var firstLineEnd: Int?
        guard
            let end = try RequestParser.findHeadEnd(
                bytes, start: 0, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: RequestLimits())
        else {
            bytes = []
            throw .badRequest("incomplete")
        }
        return try RequestParser.parseHead(bytes[0..<end])
    }

    @Test func parsesAPlainRequest() throws {
        let parsed = try head(
            "GET /v1/devices/drain%2D4?kind=water&limit=5&x=a+b HTTP/1.1\r\nHost: gw\r\nX-A:  1 \r\n\r\n")
        #expect(parsed.method == "GET")
        #expect(parsed.segments == ["v1", "devices", "drain-4"])
        #expect(parsed.queryValue("kind") == "water")
        #expect(parsed.queryValue("x") == "a b")
        #expect(parsed.headers["x-a"] == "1")
        #expect(parsed.keepAlive)
        #expect(try RequestParser.framing(parsed) == .none)
    }

    static let refused: [(String, String, Int)] = [
        ("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("unknown method", "BREW / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
        ("method not a token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("no host", "GET / HTTP/1.1\r\n\r\n", 400),
        ("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("space before colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400),
        ("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", 400),
        ("traversal", "GET /v1/../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("encoded traversal", "GET /v1/%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("encoded slash", "GET /v1/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("bad escape", "GET /v1/%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("encoded NUL", "GET /v1/%00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("fragment", "GET /v1#x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("relative target", "GET v1 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ]

    @Test(arguments: refused)
    func refusesMalformedHeads(_ name: String, _ text: String, _ status: Int) {
        #expect(throws: HTTPError.self, "\(name)") { _ = try head(text) }
        do {
            _ = try head(text)
        } catch {
            #expect(error.status.code == status, "\(name): \(error)")
        }
    }

    @Test func bareLineFeedsAndCarriageReturnsAreRefusedWhileScanning() {
        for text in ["GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n"] {
            var scanned = 0
            var firstLineEnd: Int?
            #expect(throws: HTTPError.self) {
                _ = try RequestParser.findHeadEnd(
                    Array(text.utf8), start: 0, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: RequestLimits())
            }
        }
    }

    @Test func limitsApplyBeforeTheHeadIsComplete() {
        var limits = RequestLimits()
        limits.maxRequestLineBytes = 64
        limits.maxHeaderBytes = 128
        var scanned = 0
        var firstLineEnd: Int?
        let longLine = Array(("GET /" + String(repeating: "a", count: 100)).utf8)
        #expect(throws: HTTPError.uriTooLong(limit: 64)) {
            _ = try RequestParser.findHeadEnd(
                longLine, start: 0, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: limits)
        }
        scanned = 0
        firstLineEnd = nil
        let manyHeaders = Array(("GET / HTTP/1.1\r\n" + String(repeating: "X-Pad: 0123456789\r\n", count: 10)).utf8)
        do {
            _ = try RequestParser.findHeadEnd(
                manyHeaders, start: 0, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: limits)
            Issue.record("expected 431")
        } catch {
            #expect(error.status.code == 431)
        }
        let complete = "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-Pad: 0123456789\r\n", count: 10) + "\r\n"
        scanned = 0
        firstLineEnd = nil
        do {
            _ = try RequestParser.findHeadEnd(
                Array(complete.utf8), start: 0, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: limits)
            Issue.record("expected 431 for a complete head over the limit")
        } catch {
            #expect(error.status.code == 431)
        }
        let fields = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<101).map { "X-\($0): 1\r\n" }.joined() + "\r\n"
        #expect(throws: HTTPError.headersTooLarge("more than 100 header fields")) { _ = try head(fields) }
    }

    static let framings: [(String, String, BodyFraming?, Int?)] = [
        ("length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", .length(12), nil),
        ("chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", .chunked, nil),
        (
            "both (smuggling)", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            nil, 400
        ),
        ("two lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n", nil, 400),
        ("signed length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n", nil, 400),
        ("list length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\n", nil, 400),
        ("huge length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", nil, 400),
        ("gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", nil, 501),
        ("chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", nil, 400),
        ("TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", nil, 400),
        ("POST without length", "POST / HTTP/1.1\r\nHost: a\r\n\r\n", nil, 411),
    ]

    @Test(arguments: framings)
    func framesBodiesStrictly(_ name: String, _ text: String, _ framing: BodyFraming?, _ status: Int?) throws {
        let parsed = try head(text)
        if let framing {
            #expect(try RequestParser.framing(parsed) == framing, "\(name)")
        } else {
            do {
                _ = try RequestParser.framing(parsed)
                Issue.record("\(name): expected \(status ?? 0)")
            } catch {
                #expect(error.status.code == status, "\(name)")
            }
        }
    }

    @Test func decodesChunkedBodiesInPieces() throws {
        let wire = Array("4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT".utf8)
        for split in 1..<wire.count {
            var decoder = ChunkedDecoder(limit: 100)
            let first = Array(wire[0..<split])
            var used = try decoder.feed(first, from: 0)
            var rest = Array(first[used...]) + Array(wire[split...])
            if !decoder.isDone {
                used = try decoder.feed(rest, from: 0)
                rest = Array(rest[used...])
            } else {
                rest = Array(rest)
            }
            #expect(decoder.isDone, "split at \(split)")
            #expect(String(decoding: decoder.body, as: UTF8.self) == "Wikipedia")
            #expect(String(decoding: rest, as: UTF8.self) == "NEXT", "split at \(split)")
        }
    }

    static let badChunks: [(String, String, Int)] = [
        ("not hex", "zz\r\nab\r\n0\r\n\r\n", 400),
        ("empty size", "\r\nab\r\n0\r\n\r\n", 400),
        ("negative", "-1\r\nab\r\n0\r\n\r\n", 400),
        ("overflow", "ffffffffffffffffff\r\n", 400),
        ("data longer than size", "2\r\nabc\r\n0\r\n\r\n", 400),
        ("bare LF after size", "2\nab\r\n0\r\n\r\n", 400),
        ("over the limit", "20\r\n" + String(repeating: "a", count: 32) + "\r\n0\r\n\r\n", 413),
    ]

    @Test(arguments: badChunks)
    func refusesBadChunks(_ name: String, _ wire: String, _ status: Int) {
        var decoder = ChunkedDecoder(limit: 16)
        do {
            _ = try decoder.feed(Array(wire.utf8), from: 0)
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.status.code == status, "\(name)")
        }
    }

    @Test func responseHeadersCannotBeSplit() {
        var response = HTTPResponse.text(.ok, "x")
        response.headers.add("X-Evil", "a\r\nSet-Cookie: b")
        let head = String(
            decoding: ResponseEncoder.head(response, version: .http11, contentLength: 2, keepAlive: true, date: "d"),
            as: UTF8.self)
        #expect(head.contains("X-Evil: aSet-Cookie: b\r\n"))
        #expect(!head.contains("\r\nSet-Cookie"))
    }
}

/// Mutated requests through the whole parsing path: whatever the bytes, the parser answers
/// with a head or an `HTTPError`, never a trap. Deterministic, so a failure can be replayed.
@Suite struct RequestParserFuzzTests {
    static let seeds = [
        "GET /v1/series?device=gauge-1&signal=level_cm&from=now-1h HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc",
    ]

    @Test func mutatedRequestsNeverTrap() {
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        var parsed = 0
        var refused = 0
        for round in 0..<20_000 {
            var bytes = Array(Self.seeds[round % Self.seeds.count].utf8)
            for _ in 0..<(1 + Int(next() % 4)) {
                let position = Int(next() % UInt64(bytes.count))
                switch next() % 4 {
                case 0: bytes[position] = UInt8(truncatingIfNeeded: next())
                case 1: bytes.insert(UInt8(truncatingIfNeeded: next()), at: position)
                case 2: bytes.remove(at: position)
                default: bytes.insert(contentsOf: [13, 10], at: position)
                }
                if bytes.isEmpty { bytes = [0] }
            }
            var scanned = 0
            var firstLineEnd: Int?
            do {
                guard
                    let end = try RequestParser.findHeadEnd(
                        bytes, start: 0, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: RequestLimits())
                else { continue }
                let head = try RequestParser.parseHead(bytes[0..<end])
                if try RequestParser.framing(head) == .chunked {
                    var decoder = ChunkedDecoder(limit: 1024)
                    _ = try decoder.feed(bytes, from: end)
                }
                parsed += 1
            } catch {
                refused += 1
                #expect(error.status.code >= 400)
            }
        }
        #expect(parsed > 100 && refused > 1000, "parsed \(parsed), refused \(refused)")
    }
}
