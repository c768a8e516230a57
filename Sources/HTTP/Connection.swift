import Logging

/// One client connection: reads requests one after another (keep-alive), answers each, and
/// closes on the first protocol error, timeout, or `Connection: close`.
final class Connection {
    let server: HTTPServer
    let transport: Transport
    let peer: String
    private var buffer: [UInt8] = []
    /// Where the unread part of `buffer` starts.
    private var start = 0

    init(server: HTTPServer, transport: Transport, peer: String) {
        self.server = server
        self.transport = transport
        self.peer = peer
        buffer.reserveCapacity(4096)
    }

    private var configuration: HTTPServer.Configuration { server.configuration }

    private func deadline(ms: Int) -> UInt64 { monotonicNanos() + UInt64(ms) * 1_000_000 }

    func run() {
        var first = true
        while !server.isStopping {
            // The first request must come within the header timeout; later ones within the idle one.
            let waitMs = first ? configuration.headerTimeoutMs : configuration.idleTimeoutMs
            first = false
            if start == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                start = 0
                do {
                    _ = try transport.read(into: &buffer, deadline: deadline(ms: waitMs))
                } catch {
                    if case .timedOut = error { server.countTimeout() }
                    return
                }
            }
            guard exchange() else { return }
            if start > 64 * 1024 {
                buffer.removeFirst(start)
                start = 0
            }
        }
    }

    /// Reads one request and answers it; false when the connection must close.
    private func exchange() -> Bool {
        let began = monotonicNanos()
        var head: RequestHead?
        do {
            let headEnd = try readHead(began: began)
            let parsed = try RequestParser.parseHead(buffer[start..<headEnd], limits: configuration.limits)
            head = parsed
            let framing = try RequestParser.framing(parsed)
            start = headEnd
            switch server.handler.admit(parsed) {
            case .reject(let response, let label):
                let bodyPending = framing != .none
                let keepAlive = parsed.keepAlive && !bodyPending
                let status = (try? write(response, for: parsed, keepAlive: keepAlive)) != nil ? response.status.code : 0
                report(label: label, head: parsed, status: status, began: began, error: nil)
                return keepAlive && status != 0
            case .accept(let maxBodyBytes, let label):
                let body = try readBody(framing, head: parsed, limit: maxBodyBytes)
                let request = HTTPRequest(head: parsed, body: body, peer: peer)
                let response = server.handler.respond(to: request)
                let keepAlive = parsed.keepAlive && !server.isStopping
                do {
                    try write(response, for: parsed, keepAlive: keepAlive)
                } catch {
                    report(label: label, head: parsed, status: 0, began: began, error: nil)
                    return false
                }
                report(label: label, head: parsed, status: response.status.code, began: began, error: nil)
                return keepAlive
            }
        } catch let error as HTTPError {
            fail(error, head: head, began: began)
            return false
        } catch let error as TransportError {
            if case .timedOut = error {
                server.countTimeout()
                fail(.requestTimeout, head: head, began: began)
            }
            return false
        } catch {
            return false
        }
    }

    /// Reads until the head is complete; returns the index just past its blank line.
    private func readHead(began: UInt64) throws -> Int {
        // Tolerate a few stray CRLFs between requests (RFC 9112 §2.2), no more.
        var skipped = 0
        var scanned = start
        var firstLineEnd: Int?
        let headDeadline = began + UInt64(configuration.headerTimeoutMs) * 1_000_000
        while true {
            while start + 1 < buffer.count, buffer[start] == 13, buffer[start + 1] == 10, skipped < 4 {
                start += 2
                skipped += 1
                scanned = start
            }
            if let end = try RequestParser.findHeadEnd(
                buffer, start: start, scanned: &scanned, firstLineEnd: &firstLineEnd, limits: configuration.limits)
            {
                return end
            }
            _ = try transport.read(into: &buffer, deadline: headDeadline)
        }
    }

    private func readBody(_ framing: BodyFraming, head: RequestHead, limit: Int) throws -> [UInt8] {
        switch framing {
        case .none:
            return []
        case .length(let length):
            guard length <= limit else { throw HTTPError.payloadTooLarge(limit: limit) }
            try sendContinueIfAsked(head)
            while buffer.count - start < length {
                _ = try transport.read(into: &buffer, deadline: deadline(ms: configuration.ioTimeoutMs))
            }
            let body = Array(buffer[start..<(start + length)])
            start += length
            return body
        case .chunked:
            try sendContinueIfAsked(head)
            var decoder = ChunkedDecoder(limit: limit)
            while true {
                start += try decoder.feed(buffer, from: start)
                if decoder.isDone { return decoder.body }
                buffer.removeFirst(start)
                start = 0
                _ = try transport.read(into: &buffer, deadline: deadline(ms: configuration.ioTimeoutMs))
            }
        }
    }

    private func sendContinueIfAsked(_ head: RequestHead) throws {
        guard let expect = head.headers["expect"] else { return }
        guard expect.lowercased() == "100-continue" else {
            throw HTTPError.expectationFailed("Expect: \(expect.prefix(64)) is not supported; only 100-continue")
        }
        guard head.version == .http11, buffer.count == start else { return }
        try transport.write(
            Array("HTTP/1.1 100 Continue\r\n\r\n".utf8), deadline: deadline(ms: configuration.ioTimeoutMs))
    }

    private func write(_ response: HTTPResponse, for head: RequestHead, keepAlive: Bool) throws {
        let writeDeadline = { self.deadline(ms: self.configuration.ioTimeoutMs) }
        let bodyAllowed = head.method != "HEAD" && response.status.code != 204 && response.status.code != 304
        switch response.body {
        case .bytes(let body):
            var bytes = ResponseEncoder.head(
                response, version: head.version, contentLength: body.count, keepAlive: keepAlive, date: httpDate())
            if bodyAllowed { bytes.append(contentsOf: body) }
            try transport.write(bytes, deadline: writeDeadline())
        case .stream(let produce):
            // HTTP/1.0 has no chunked encoding: such a client gets the body whole.
            if head.version == .http10 {
                var whole: [UInt8] = []
                try produce(ChunkWriter { whole.append(contentsOf: $0) })
                var bytes = ResponseEncoder.head(
                    response, version: head.version, contentLength: whole.count, keepAlive: keepAlive, date: httpDate())
                if bodyAllowed { bytes.append(contentsOf: whole) }
                try transport.write(bytes, deadline: writeDeadline())
                return
            }
            try transport.write(
                ResponseEncoder.head(
                    response, version: head.version, contentLength: nil, keepAlive: keepAlive, date: httpDate()),
                deadline: writeDeadline())
            guard bodyAllowed else { return }
            // Small chunks are gathered so a series of many rows leaves in few writes.
            var pending: [UInt8] = []
            let transport = transport
            try produce(
                ChunkWriter { bytes in
                    pending.append(contentsOf: bytes)
                    if pending.count >= 16 * 1024 {
                        try transport.write(ResponseEncoder.chunk(pending), deadline: writeDeadline())
                        pending.removeAll(keepingCapacity: true)
                    }
                })
            if !pending.isEmpty { try transport.write(ResponseEncoder.chunk(pending), deadline: writeDeadline()) }
            try transport.write(Array("0\r\n\r\n".utf8), deadline: writeDeadline())
        }
    }

    /// Answers a protocol error (best effort: the client may be gone) and reports it.
    private func fail(_ error: HTTPError, head: RequestHead?, began: UInt64) {
        var response = server.handler.errorResponse(error)
        response.status = error.status
        let replyHead =
            head
            ?? RequestHead(
                method: "GET", target: "", segments: [], query: [], version: .http11, headers: HTTPHeaders())
        try? write(response, for: replyHead, keepAlive: false)
        report(label: "(invalid)", head: head, status: error.status.code, began: began, error: error)
    }

    private func report(label: String, head: RequestHead?, status: Int, began: UInt64, error: HTTPError?) {
        server.handler.finished(
            Exchange(
                label: label, method: head?.method ?? "", status: status, durationNanos: monotonicNanos() - began,
                peer: peer, error: error))
    }
}
