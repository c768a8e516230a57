import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A structured logger: one line per event, `key=value`, with a level.
///
/// It is a value type handed down into components (never created inside them), so a
/// component adds its own metadata (`component=mqtt`) without affecting its caller.
/// Messages are `@autoclosure`s: a debug line costs nothing when the level is info.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical

        public var name: String {
            switch self {
            case .trace: "trace"
            case .debug: "debug"
            case .info: "info"
            case .notice: "notice"
            case .warning: "warning"
            case .error: "error"
            case .critical: "critical"
            }
        }

        /// The syslog priority journald files the line under (`journalctl -p`): trace and
        /// debug are both `debug`, as syslog has nothing finer.
        public var syslogPriority: Int {
            switch self {
            case .trace, .debug: 7
            case .info: 6
            case .notice: 5
            case .warning: 4
            case .error: 3
            case .critical: 2
            }
        }

        public init?(name: String) {
            guard let level = Level.allCases.first(where: { $0.name == name }) else { return nil }
            self = level
        }

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var level: Level
    public var metadata: [(String, String)]
    let sink: LogSink

    public init(level: Level = .info, sink: LogSink = .standardError) {
        self.level = level
        self.metadata = []
        self.sink = sink
    }

    /// A copy that stamps every line with `key=value`.
    public func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy.metadata.append((key, value))
        return copy
    }

    public func log(
        _ level: Level, _ event: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []
    ) {
        guard level >= self.level else { return }
        // Under journald the priority travels as an sd-daemon `<N>` prefix and the journal
        // stamps the time itself: a second timestamp would only be noise in `journalctl`.
        var line =
            sink.isJournal
            ? "<\(level.syslogPriority)>level=\(level.name) event=\(Self.quote(event()))"
            : "ts=\(Self.timestamp()) level=\(level.name) event=\(Self.quote(event()))"
        for (key, value) in metadata { line += " \(key)=\(Self.quote(value))" }
        for (key, value) in fields() { line += " \(key)=\(Self.quote(value))" }
        sink.write(line)
    }

    public func trace(_ event: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.trace, event(), fields())
    }
    public func debug(_ event: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.debug, event(), fields())
    }
    public func info(_ event: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.info, event(), fields())
    }
    public func notice(_ event: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.notice, event(), fields())
    }
    public func warning(_ event: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.warning, event(), fields())
    }
    public func error(_ event: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.error, event(), fields())
    }
    public func critical(_ event: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.critical, event(), fields())
    }

    /// Quotes a value when it would otherwise break the `key=value` grammar.
    static func quote(_ value: String) -> String {
        var needsQuotes = value.isEmpty
        for byte in value.utf8
        where byte <= 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "=") || byte >= 0x7F {
            needsQuotes = true
            break
        }
        guard needsQuotes else { return value }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                quoted += "\\x" + String(scalar.value, radix: 16)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return rfc3339(ms: Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000)
    }

    /// `2026-11-29T16:58:01.234Z` for milliseconds since the epoch (UTC): the log's `ts=` and
    /// the API's timestamps, without Foundation's formatters.
    public static func rfc3339(ms: Int64) -> String {
        var seconds = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let date = "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
        let time = "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
        return "\(date)T\(time).\(pad(Int(ms % 1000), 3))Z"
    }
}

/// Where log lines go. Lines from all threads are written whole, never interleaved.
public final class LogSink: Sendable {
    let descriptor: Int32
    /// The descriptor is systemd's journal stream: lines carry their priority, not a time.
    public let isJournal: Bool
    let lock = Mutex(())

    public init(descriptor: Int32) {
        self.descriptor = descriptor
        self.isJournal = Self.isJournalStream(descriptor)
    }

    /// systemd sets `JOURNAL_STREAM=DEV:INODE` for a service whose output goes to the journal;
    /// the descriptor is that stream only if its device and inode match (a shell started from
    /// the service, or output redirected to a file, inherits the variable but not the stream).
    static func isJournalStream(_ descriptor: Int32) -> Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    public static let standardError = LogSink(descriptor: 2)
    public static let standardOutput = LogSink(descriptor: 1)

    func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        lock.withLock { _ in
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    offset += written
                }
            }
        }
    }
}
