import Foundation
import JSON

#if canImport(Glibc)
    import Glibc
#endif

/// Headless Chromium (Debian's `chromium`) driven over its DevTools protocol: a real browser
/// for the console's tests. The protocol runs over a WebSocket, spoken here by `DevToolsSocket`
/// (RFC 6455, client side: masked frames out, unmasked in) on a loopback connection.
final class Chromium: @unchecked Sendable {
    static let executable = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    let process: ChildProcess
    private let socket: DevToolsSocket
    private var nextID = 1
    /// Console messages, uncaught exceptions and browser log entries (CSP violations among them).
    private(set) var problems: [String] = []

    init(scratch: Scratch) throws {
        guard let executable = Self.executable else { throw HarnessError.notFound("chromium") }
        let port = try freeLoopbackPort()
        process = try ChildProcess(
            name: "chromium", executable: executable,
            arguments: [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--hide-scrollbars",
                "--user-data-dir=\(scratch.file("chromium-profile"))", "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=\(port)", "--window-size=1280,900", "about:blank",
            ],
            logPath: scratch.file("chromium.log"))
        var target: String?
        try waitFor("chromium's DevTools endpoint", seconds: 30) { [process] in
            guard process.isRunning else {
                throw HarnessError.exited("chromium", process.terminationStatus, process.log)
            }
            guard let response = try? rawRequest(port: port, "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
                response.status == 200, case .array(let targets)? = try? JSONParser.parse(response.body)
            else { return false }
            target = targets.first { $0["type"]?.string == "page" }?["webSocketDebuggerUrl"]?.string
            return target != nil
        }
        guard let url = target, let start = url.range(of: "/devtools/")?.lowerBound else {
            throw HarnessError.notFound("a page target")
        }
        socket = try DevToolsSocket(port: port, path: String(url[start...]))
        _ = try send("Page.enable")
        _ = try send("Runtime.enable")
        _ = try send("Log.enable")
    }

    deinit { _ = process.stop(signal: SIGKILL) }

    /// Sends a command and returns its result, noting the events that arrive meanwhile.
    @discardableResult
    func send(_ method: String, _ parameters: [(key: String, value: JSONValue)] = []) throws -> JSONValue {
        let id = nextID
        nextID += 1
        let message = JSONValue.object(
            JSONObject([
                ("id", .int(Int64(id))), ("method", .string(method)), ("params", .object(JSONObject(parameters))),
            ]))
        try socket.send(text: message.serialized())
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            guard let text = try socket.receive(until: deadline) else { break }
            let reply = try JSONParser.parse(Array(text.utf8))
            if reply["id"]?.number == Double(id) {
                if let error = reply["error"] { throw HarnessError.timeout("\(method) failed: \(error.serialized())") }
                return reply["result"] ?? .null
            }
            note(reply)
        }
        throw HarnessError.timeout("no answer to \(method)")
    }

    private func note(_ event: JSONValue) {
        let parameters = event["params"]
        switch event["method"]?.string {
        case "Runtime.consoleAPICalled":
            guard ["error", "warning", "assert"].contains(parameters?["type"]?.string ?? "") else { return }
            let text = parameters?["args"]?.arrayValue?.map { $0["value"]?.string ?? $0["description"]?.string ?? "?" }
            problems.append("console.\(parameters?["type"]?.string ?? ""): \((text ?? []).joined(separator: " "))")
        case "Runtime.exceptionThrown":
            let details = parameters?["exceptionDetails"]
            problems.append(
                "exception: \(details?["exception"]?["description"]?.string ?? details?["text"]?.string ?? "?")")
        case "Log.entryAdded":
            let entry = parameters?["entry"]
            guard entry?["level"]?.string == "error" || entry?["source"]?.string == "security" else { return }
            // An API call answered 401 or 403 is part of the flow (a wrong token, the role probe):
            // the tests check those answers themselves. Any other failed load is a problem.
            if entry?["source"]?.string == "network", entry?["url"]?.string?.contains("/v1/") == true { return }
            problems.append("log (\(entry?["source"]?.string ?? "")): \(entry?["text"]?.string ?? "")")
        default: return
        }
    }

    /// Evaluates an expression in the page (awaiting a promise) and returns its value.
    @discardableResult
    func evaluate(_ expression: String) throws -> JSONValue {
        let result = try send(
            "Runtime.evaluate",
            [("expression", .string(expression)), ("returnByValue", .bool(true)), ("awaitPromise", .bool(true))])
        if let exception = result["exceptionDetails"] {
            throw HarnessError.timeout("evaluating \(expression.prefix(80)): \(exception.serialized().prefix(400))")
        }
        return result["result"]?["value"] ?? .null
    }

    func navigate(_ url: String) throws {
        try send("Page.navigate", [("url", .string(url))])
        try wait("the page to load") { try evaluate("document.readyState") == .string("complete") }
    }

    /// Polls until `condition` (JavaScript, true or false) holds in the page.
    func wait(for what: String, seconds: Double = 20, _ condition: String) throws {
        try wait(what, seconds: seconds) { try evaluate("Boolean(\(condition))") == .bool(true) }
    }

    /// Polls `condition`; each evaluation also reads the events that arrived since the last one.
    func wait(_ what: String, seconds: Double = 20, _ condition: () throws -> Bool) throws {
        try waitFor("the browser: \(what)", seconds: seconds, condition)
    }

    /// Sizes the page as a desktop (1280 wide) or a phone (390 wide, touch, 3× pixels).
    func viewport(width: Int, height: Int, mobile: Bool) throws {
        try send(
            "Emulation.setDeviceMetricsOverride",
            [
                ("width", .int(Int64(width))), ("height", .int(Int64(height))),
                ("deviceScaleFactor", .int(mobile ? 2 : 1)), ("mobile", .bool(mobile)),
            ])
    }

    /// A PNG of the whole page, written to `path`.
    func screenshot(to path: String) throws {
        let result = try send(
            "Page.captureScreenshot", [("format", .string("png")), ("captureBeyondViewport", .bool(true))])
        guard let data = result["data"]?.string.flatMap({ Data(base64Encoded: $0) }) else {
            throw HarnessError.notFound("screenshot data")
        }
        try data.write(to: URL(fileURLWithPath: path))
    }
}

/// The client side of a WebSocket (RFC 6455) on a loopback TCP connection, enough for DevTools:
/// text frames, fragmented messages, ping/pong and close.
final class DevToolsSocket {
    private let connection: RawConnection
    private var buffer: [UInt8] = []

    init(port: Int, path: String) throws {
        connection = try RawConnection(port: port)
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        connection.send(
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let deadline = Date().addingTimeInterval(10)
        while !buffer.containsHeaderEnd {
            guard try read(until: deadline) else { throw HarnessError.timeout("the WebSocket handshake") }
        }
        let end = buffer.headerEnd!
        let head = String(decoding: buffer[..<end], as: UTF8.self)
        buffer.removeFirst(end + 4)
        guard head.hasPrefix("HTTP/1.1 101") else { throw HarnessError.notFound("a WebSocket upgrade: \(head)") }
    }

    func send(text: String) throws {
        try sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        switch payload.count {
        case 0..<126: frame.append(0x80 | UInt8(payload.count))
        case 126..<65536:
            frame.append(0x80 | 126)
            frame += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((UInt64(payload.count) >> (UInt64($0) * 8)) & 0xFF) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $1 ^ mask[$0 % 4] }
        guard connection.send(frame) else { throw HarnessError.exited("the DevTools socket", -1, "closed") }
    }

    /// The next text message, or nil when none came before `deadline`.
    func receive(until deadline: Date) throws -> String? {
        var message: [UInt8] = []
        while true {
            guard let (fin, opcode, payload) = try frame(until: deadline) else { return nil }
            switch opcode {
            case 0x9: try sendFrame(opcode: 0xA, payload: payload)
            case 0xA: continue
            case 0x8: throw HarnessError.exited("the DevTools socket", -1, "closed by the browser")
            default:
                message += payload
                if fin { return String(decoding: message, as: UTF8.self) }
            }
        }
    }

    private func frame(until deadline: Date) throws -> (fin: Bool, opcode: UInt8, payload: [UInt8])? {
        while true {
            if buffer.count >= 2 {
                var length = Int(buffer[1] & 0x7F)
                var offset = 2
                if length == 126, buffer.count >= 4 {
                    length = Int(buffer[2]) << 8 | Int(buffer[3])
                    offset = 4
                } else if length == 127, buffer.count >= 10 {
                    length = (2..<10).reduce(0) { $0 << 8 | Int(buffer[$1]) }
                    offset = 10
                }
                let masked = buffer[1] & 0x80 != 0
                let start = offset + (masked ? 4 : 0)
                if length < 126 || offset > 2, buffer.count >= start + length {
                    var payload = Array(buffer[start..<(start + length)])
                    if masked {
                        let mask = Array(buffer[offset..<(offset + 4)])
                        payload = payload.enumerated().map { $1 ^ mask[$0 % 4] }
                    }
                    let header = buffer[0]
                    buffer.removeFirst(start + length)
                    return (header & 0x80 != 0, header & 0x0F, payload)
                }
            }
            guard try read(until: deadline) else { return nil }
        }
    }

    /// Reads what is there (waiting up to `deadline`); false when nothing came.
    private func read(until deadline: Date) throws -> Bool {
        var descriptor = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
        guard poll(&descriptor, 1, ms) > 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        let n = recv(connection.fd, &chunk, chunk.count, 0)
        guard n > 0 else { throw HarnessError.exited("the DevTools socket", -1, "closed") }
        buffer += chunk[0..<n]
        return true
    }
}

extension Array where Element == UInt8 {
    fileprivate var headerEnd: Int? {
        guard count >= 4 else { return nil }
        for index in 0...(count - 4)
        where self[index] == 13 && self[index + 1] == 10 && self[index + 2] == 13 && self[index + 3] == 10 {
            return index
        }
        return nil
    }

    fileprivate var containsHeaderEnd: Bool { headerEnd != nil }
}
