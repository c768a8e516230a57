/// Size limits applied while a request head is read. Defaults follow the issue: an 8 KiB
/// request line, 32 KiB and 100 fields of headers.
public struct RequestLimits: Sendable {
    public var maxRequestLineBytes = 8 * 1024
    public var maxHeaderBytes = 32 * 1024
    public var maxHeaderFields = 100

    public init() {}
}

/// How a request's body is delimited.
public enum BodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
}

/// Strict HTTP/1.1 request-head parsing (RFC 9110/9112) over raw bytes.
///
/// Strict on purpose: every ambiguity a proxy in front of the gateway might read
/// differently (bare LF, obs-fold, whitespace before a colon, both Content-Length and
/// Transfer-Encoding, duplicate lengths) is refused with 400 rather than guessed at, which is
/// what closes request smuggling.
public enum RequestParser {
    public static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]

    /// Looks for the end of the head in `buffer[start...]`, scanning only new bytes.
    ///
    /// Returns the index just past the blank line, or nil if more bytes are needed. Throws as
    /// soon as the bytes so far break the rules or the limits, so a client cannot make the
    /// server buffer an endless head.
    public static func findHeadEnd(
        _ buffer: [UInt8], start: Int, scanned: inout Int, firstLineEnd: inout Int?, limits: RequestLimits
    ) throws(HTTPError) -> Int? {
        var index = max(scanned, start)
        let end = buffer.count
        while index < end {
            let byte = buffer[index]
            if byte == 10 {
                guard index > start, buffer[index - 1] == 13 else {
                    throw .badRequest("bare LF in the request head at byte \(index - start); lines end with CRLF")
                }
                if firstLineEnd == nil {
                    firstLineEnd = index + 1
                } else if index - start >= 3, buffer[index - 2] == 10, buffer[index - 3] == 13 {
                    // The limit holds however the head arrived, in one read or many.
                    if let firstLineEnd, index + 1 - firstLineEnd > limits.maxHeaderBytes {
                        throw .headersTooLarge("the header section is larger than \(limits.maxHeaderBytes) bytes")
                    }
                    scanned = index + 1
                    return index + 1
                }
            } else if index > start, buffer[index - 1] == 13 {
                throw .badRequest("bare CR in the request head at byte \(index - start - 1)")
            } else if firstLineEnd == nil, byte != 13, byte < 0x20 || byte >= 0x7F {
                // The request line is visible ASCII and spaces only: binary (a TLS hello to the
                // plain port, a stray protocol) is refused at once instead of waiting for a CRLF.
                throw .badRequest(
                    "the request line holds a byte that is not visible ASCII (0x\(String(byte, radix: 16)))")
            }
            index += 1
        }
        scanned = index
        let length = end - start
        if firstLineEnd == nil, length > limits.maxRequestLineBytes {
            throw .uriTooLong(limit: limits.maxRequestLineBytes)
        }
        if let firstLineEnd, end - firstLineEnd > limits.maxHeaderBytes {
            throw .headersTooLarge("the header section is larger than \(limits.maxHeaderBytes) bytes")
        }
        return nil
    }

    /// Parses a complete head (request line and header lines, each ending in CRLF, then CRLF).
    public static func parseHead(_ bytes: ArraySlice<UInt8>, limits: RequestLimits = RequestLimits()) throws(HTTPError)
        -> RequestHead
    {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = bytes.startIndex
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == 13, index + 1 < bytes.endIndex, bytes[index + 1] == 10 {
                lines.append(bytes[lineStart..<index])
                index += 2
                lineStart = index
            } else {
                index += 1
            }
        }
        guard let requestLine = lines.first else { throw .badRequest("empty request") }
        guard requestLine.count <= limits.maxRequestLineBytes else {
            throw .uriTooLong(limit: limits.maxRequestLineBytes)
        }
        let headerLines = lines.dropFirst().prefix { !$0.isEmpty }
        guard headerLines.count <= limits.maxHeaderFields else {
            throw .headersTooLarge("more than \(limits.maxHeaderFields) header fields")
        }

        let parts = requestLine.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
            throw .badRequest("the request line must be METHOD SP TARGET SP VERSION, separated by single spaces")
        }
        guard parts[0].count <= 32, parts[0].allSatisfy(isTokenByte) else {
            throw .badRequest("the method is not a token")
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        let version = try parseVersion(parts[2])
        guard knownMethods.contains(method) else { throw .notImplemented("method \(method) is not implemented") }
        let target = parts[1]
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .badRequest("the request target holds a byte outside visible ASCII; percent-encode it")
        }
        let (segments, query) = try parseTarget(target, method: method)

        var headers = HTTPHeaders()
        for line in headerLines {
            guard let first = line.first, first != 32, first != 9 else {
                throw .badRequest("a header line starts with whitespace (obsolete line folding is not accepted)")
            }
            guard let colon = line.firstIndex(of: 58) else {
                throw .badRequest("a header line has no colon")
            }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else {
                throw .badRequest(
                    "header name \"\(printable(name))\" is not a token (no whitespace before the colon)")
            }
            var value = line[(colon + 1)...]
            while let first = value.first, first == 32 || first == 9 { value.removeFirst() }
            while let last = value.last, last == 32 || last == 9 { value.removeLast() }
            guard value.allSatisfy({ $0 == 9 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                throw .badRequest("header \(printable(name)) holds a control character")
            }
            guard let text = String(validating: value, as: UTF8.self) else {
                throw .badRequest("header \(printable(name)) is not valid UTF-8")
            }
            headers.add(String(decoding: name, as: UTF8.self), text)
        }
        if version == .http11 {
            let hosts = headers.values("host")
            guard hosts.count == 1 else {
                throw .badRequest(hosts.isEmpty ? "HTTP/1.1 requires a Host header" : "more than one Host header")
            }
        }
        return RequestHead(
            method: method, target: String(decoding: target, as: UTF8.self), segments: segments, query: query,
            version: version, headers: headers)
    }

    /// Decides how the body is delimited, refusing every combination that two parsers could
    /// read differently.
    public static func framing(_ head: RequestHead) throws(HTTPError) -> BodyFraming {
        let transferEncodings = head.headers.values("transfer-encoding")
        let lengths = head.headers.values("content-length")
        if !transferEncodings.isEmpty {
            guard head.version == .http11 else { throw .badRequest("Transfer-Encoding in an HTTP/1.0 request") }
            guard lengths.isEmpty else {
                throw .badRequest("both Content-Length and Transfer-Encoding; send exactly one")
            }
            let codings = head.headers.tokens("transfer-encoding")
            guard codings == ["chunked"] else {
                if codings.last != "chunked" {
                    throw .badRequest(
                        "Transfer-Encoding must end with chunked, got \"\(codings.joined(separator: ", "))\"")
                }
                throw .notImplemented("transfer coding \(codings.dropLast().joined(separator: ", ")) is not supported")
            }
            return .chunked
        }
        if !lengths.isEmpty {
            guard lengths.count == 1 else { throw .badRequest("more than one Content-Length header") }
            let text = lengths[0]
            guard !text.isEmpty, text.utf8.count <= 15, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                let length = Int(text)
            else {
                throw .badRequest("Content-Length must be a decimal number, got \"\(text.prefix(32))\"")
            }
            return length == 0 ? .none : .length(length)
        }
        if ["POST", "PUT", "PATCH"].contains(head.method) { throw .lengthRequired }
        return .none
    }

    static func parseVersion(_ bytes: ArraySlice<UInt8>) throws(HTTPError) -> HTTPVersion {
        let text = String(decoding: bytes, as: UTF8.self)
        switch text {
        case "HTTP/1.1": return .http11
        case "HTTP/1.0": return .http10
        default:
            let u = Array(bytes)
            if u.count == 8, text.hasPrefix("HTTP/"), isDigit(u[5]), u[6] == 46, isDigit(u[7]) {
                throw .versionNotSupported(text)
            }
            throw .badRequest("\"\(printable(bytes.prefix(16)))\" is not an HTTP version")
        }
    }

    static func parseTarget(_ target: ArraySlice<UInt8>, method: String) throws(HTTPError) -> (
        [String], [(name: String, value: String)]
    ) {
        var target = target
        if target.first != 47 {
            if target.elementsEqual("*".utf8), method == "OPTIONS" { return ([], []) }
            let text = String(decoding: target, as: UTF8.self).lowercased()
            guard text.hasPrefix("http://") || text.hasPrefix("https://") else {
                throw .badRequest("the request target must start with /")
            }
            let afterScheme = target.dropFirst(text.hasPrefix("http://") ? 7 : 8)
            guard let slash = afterScheme.firstIndex(of: 47) else { return ([], []) }
            target = target[slash...]
        }
        guard !target.contains(35) else { throw .badRequest("the request target holds a fragment (#)") }
        let pathPart: ArraySlice<UInt8>
        var queryPart: ArraySlice<UInt8> = []
        if let question = target.firstIndex(of: 63) {
            pathPart = target[target.startIndex..<question]
            queryPart = target[(question + 1)...]
        } else {
            pathPart = target
        }
        var segments: [String] = []
        for raw in pathPart.split(separator: 47) {
            let decoded = try percentDecode(raw, plusIsSpace: false, what: "path")
            guard !decoded.contains(0), !decoded.contains(47) else {
                throw .badRequest("the path holds an encoded NUL or slash")
            }
            guard let segment = String(validating: decoded, as: UTF8.self) else {
                throw .badRequest("the path is not valid UTF-8 once decoded")
            }
            guard segment != ".", segment != ".." else { throw .badRequest("the path holds a . or .. segment") }
            segments.append(segment)
        }
        var query: [(name: String, value: String)] = []
        for pair in queryPart.split(separator: 38) {
            let equals = pair.firstIndex(of: 61)
            let rawName = equals.map { pair[pair.startIndex..<$0] } ?? pair
            let rawValue = equals.map { pair[($0 + 1)...] } ?? []
            let name = try percentDecode(rawName, plusIsSpace: true, what: "query")
            let value = try percentDecode(rawValue, plusIsSpace: true, what: "query")
            guard let nameText = String(validating: name, as: UTF8.self),
                let valueText = String(validating: value, as: UTF8.self), !name.contains(0), !value.contains(0)
            else {
                throw .badRequest("a query parameter is not valid UTF-8 or holds NUL once decoded")
            }
            query.append((nameText, valueText))
        }
        return (segments, query)
    }

    static func percentDecode(_ bytes: ArraySlice<UInt8>, plusIsSpace: Bool, what: String) throws(HTTPError)
        -> [UInt8]
    {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == 37 {
                guard index + 2 < bytes.endIndex,
                    let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
                else {
                    throw .badRequest("the \(what) holds a % not followed by two hex digits")
                }
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(plusIsSpace && byte == 43 ? 32 : byte)
                index += 1
            }
        }
        return out
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: return byte - 48
        case 65...70: return byte - 55
        case 97...102: return byte - 87
        default: return nil
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    /// RFC 9110 tchar.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122: return true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: return true
        default: return false
        }
    }

    static func printable(_ bytes: some Collection<UInt8>) -> String {
        String(bytes.prefix(64).map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "?" })
    }
}

/// Decodes a chunked body incrementally (RFC 9112 §7.1), enforcing the route's size limit
/// as data arrives rather than after.
public struct ChunkedDecoder {
    enum State {
        case size
        case sizeCR
        case `extension`
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerLine
        case trailerCR
        case finalLF
        case done
    }

    public private(set) var body: [UInt8] = []
    let limit: Int
    var state = State.size
    var sizeDigits = 0
    var size = 0
    var extensionBytes = 0
    var trailerBytes = 0

    public init(limit: Int) {
        self.limit = limit
    }

    public var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Consumes bytes from `bytes[from...]`; returns how many were used (the rest belong to
    /// the next request on the connection).
    public mutating func feed(_ bytes: [UInt8], from start: Int) throws(HTTPError) -> Int {
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            switch state {
            case .size:
                if let digit = RequestParser.hexValue(byte) {
                    sizeDigits += 1
                    guard sizeDigits <= 15 else { throw .badRequest("a chunk size has more than 15 hex digits") }
                    size = size << 4 | Int(digit)
                } else if sizeDigits == 0 {
                    throw .badRequest("a chunk size is missing or not hexadecimal")
                } else if byte == 59 {
                    state = .extension
                } else if byte == 13 {
                    state = .sizeCR
                } else {
                    throw .badRequest("a chunk size is followed by an unexpected byte")
                }
                index += 1
            case .extension:
                if byte == 13 {
                    state = .sizeCR
                } else {
                    extensionBytes += 1
                    guard extensionBytes <= 1024, byte == 9 || (byte >= 0x20 && byte < 0x7F) else {
                        throw .badRequest("a chunk extension is too long or holds a control byte")
                    }
                }
                index += 1
            case .sizeCR:
                guard byte == 10 else { throw .badRequest("a chunk size line does not end with CRLF") }
                index += 1
                if size == 0 {
                    state = .trailerLineStart
                } else {
                    guard body.count + size <= limit else { throw .payloadTooLarge(limit: limit) }
                    body.reserveCapacity(body.count + size)
                    state = .data(remaining: size)
                }
                size = 0
                sizeDigits = 0
                extensionBytes = 0
            case .data(let remaining):
                let take = min(remaining, bytes.count - index)
                body.append(contentsOf: bytes[index..<(index + take)])
                index += take
                state = remaining == take ? .dataCR : .data(remaining: remaining - take)
            case .dataCR:
                guard byte == 13 else { throw .badRequest("chunk data is longer than its size") }
                state = .dataLF
                index += 1
            case .dataLF:
                guard byte == 10 else { throw .badRequest("chunk data does not end with CRLF") }
                state = .size
                index += 1
            case .trailerLineStart:
                if byte == 13 {
                    state = .finalLF
                } else {
                    state = .trailerLine
                    continue
                }
                index += 1
            case .trailerLine:
                trailerBytes += 1
                guard trailerBytes <= 8 * 1024 else {
                    throw .headersTooLarge("the chunked trailer section is too large")
                }
                if byte == 13 {
                    state = .trailerCR
                } else if byte == 10 || (byte < 0x20 && byte != 9) {
                    throw .badRequest("a trailer line holds a control byte")
                }
                index += 1
            case .trailerCR:
                guard byte == 10 else { throw .badRequest("a trailer line does not end with CRLF") }
                state = .trailerLineStart
                index += 1
            case .finalLF:
                guard byte == 10 else { throw .badRequest("the chunked body does not end with CRLF") }
                state = .done
                return index + 1 - start
            case .done:
                return index - start
            }
        }
        return index - start
    }
}
