import Crypto
import Foundation
import RingStore

/// gwctl: the operator's tool. This first version reads a store file directly (read-only,
/// safe beside a running gatewayd); commands against the REST API come with it.
let usage = """
    usage: gwctl COMMAND [options]

    commands:
      stats     readings per kind, devices, loss accounting and rejects in a store
      watch     a live line per interval: readings per kind and the ingest rate (Ctrl-C ends)
      devices   one line per device: kind, last seen, firmware, seq gaps, duplicates
      rejects   the newest rejected messages with their reasons
      token     token new --role viewer|operator [--name NAME]: a new API token and its config line

    options:
      --db PATH        store file (default $GWCTL_DB or var/gateway.db)
      --json           machine-readable output
      --limit N        rows for devices and rejects (default 20)
      --interval S     seconds between watch lines (default 1)
    """

struct Options {
    var command = ""
    var positional: [String] = []
    var db = ProcessInfo.processInfo.environment["GWCTL_DB"] ?? "var/gateway.db"
    var json = false
    var limit = 20
    var interval = 1.0
    var role: String?
    var name = "dashboard"
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("gwctl: \(message)\n".utf8))
    exit(code)
}

func parse() -> Options {
    var options = Options()
    var arguments = Array(CommandLine.arguments.dropFirst())[...]
    guard let command = arguments.popFirst() else { fail("a command is required\n\(usage)", code: 64) }
    options.command = command
    func value(_ flag: String) -> String {
        guard let next = arguments.popFirst() else { fail("\(flag) needs a value", code: 64) }
        return next
    }
    while let argument = arguments.popFirst() {
        switch argument {
        case "--db": options.db = value(argument)
        case "--json": options.json = true
        case "--limit":
            guard let limit = Int(value(argument)), limit > 0 else {
                fail("--limit must be a positive integer", code: 64)
            }
            options.limit = limit
        case "--interval":
            guard let interval = Double(value(argument)), interval > 0 else { fail("--interval must be > 0", code: 64) }
            options.interval = interval
        case "--role": options.role = value(argument)
        case "--name": options.name = value(argument)
        case "--help", "-h":
            print(usage)
            exit(0)
        default:
            if argument.hasPrefix("--") { fail("unknown option \(argument)\n\(usage)", code: 64) }
            options.positional.append(argument)
        }
    }
    return options
}

func openStore(_ path: String) -> StoreReader {
    guard FileManager.default.fileExists(atPath: path) else {
        fail("no store at \(path): pass --db PATH (the store.path of gatewayd's config)")
    }
    do {
        return try StoreReader(path: path)
    } catch {
        fail("\(error)")
    }
}

func jsonLine(_ object: [String: Any]) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}

func table(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

func age(_ ms: Int64) -> String {
    let seconds = max(0, Int64(Date().timeIntervalSince1970 * 1000) - ms) / 1000
    if seconds < 120 { return "\(seconds)s ago" }
    if seconds < 7200 { return "\(seconds / 60)m ago" }
    return "\(seconds / 3600)h ago"
}

let options = parse()
switch options.command {
case "stats":
    let summary: StoreReader.Summary
    do { summary = try openStore(options.db).summary() } catch { fail("\(error)") }
    if options.json {
        print(
            jsonLine([
                "readings": summary.readingsByKind, "devices": summary.devicesByKind,
                "capacity_readings": summary.capacityReadings, "readings_evicted": summary.readingsEvicted,
                "events": summary.events, "rejects": summary.rejectsByReason, "seq_gaps": summary.seqGaps,
                "duplicates": summary.duplicates, "file_bytes": summary.fileBytes, "aggregates": summary.aggregates,
                "alerts_active": summary.alertsActive, "outbox_messages": summary.outboxMessages,
            ]))
    } else {
        let fill = summary.capacityReadings > 0 ? 100 * Double(summary.readings) / Double(summary.capacityReadings) : 0
        print("store        \(options.db) (\(summary.fileBytes / 1024) KiB)")
        print(
            "readings     \(summary.readings) of \(summary.capacityReadings) (\(String(format: "%.1f", fill))%), "
                + "\(summary.readingsEvicted) overwritten")
        for (kind, count) in summary.readingsByKind.sorted(by: { $0.key < $1.key }) {
            print("  \(kind.padding(toLength: 10, withPad: " ", startingAt: 0)) \(count)")
        }
        print(
            "devices      "
                + summary.devicesByKind.sorted(by: { $0.key < $1.key }).map { "\($0.value) \($0.key)" }.joined(
                    separator: ", "))
        print("loss         \(summary.seqGaps) missing (seq gaps), \(summary.duplicates) duplicates dropped")
        print("events       \(summary.events) trouble codes")
        print("aggregates   \(summary.aggregates) windows stored, \(summary.alertsActive) alerts active")
        print("outbox       \(summary.outboxMessages) messages waiting for upstream")
        print("rejects      \(summary.rejectsByReason.values.reduce(0, +))")
        for (reason, count) in summary.rejectsByReason.sorted(by: { $0.value > $1.value }) {
            print("  \(reason.padding(toLength: 18, withPad: " ", startingAt: 0)) \(count)")
        }
    }
case "watch":
    let reader = openStore(options.db)
    var previous: StoreReader.Summary?
    var previousTime = Date()
    signal(SIGINT) { _ in exit(0) }
    while true {
        let summary: StoreReader.Summary
        do { summary = try reader.summary() } catch { fail("\(error)") }
        let now = Date()
        // Rate from the total written (held + overwritten), so it stays right once the ring is full.
        let written = summary.readings + summary.readingsEvicted
        let rate =
            previous.map {
                Double(written - ($0.readings + $0.readingsEvicted)) / now.timeIntervalSince(previousTime)
            } ?? 0
        let kinds = summary.readingsByKind.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }
        let time = ISO8601DateFormatter().string(from: now)
        print(
            "\(time) readings \(kinds.joined(separator: " ")) rate=\(Int(rate))/s devices=\(summary.devicesByKind.values.reduce(0, +)) "
                + "gaps=\(summary.seqGaps) dups=\(summary.duplicates) rejects=\(summary.rejectsByReason.values.reduce(0, +)) "
                + "windows=\(summary.aggregates) alerts=\(summary.alertsActive) outbox=\(summary.outboxMessages)"
        )
        fflush(nil)
        previous = summary
        previousTime = now
        Thread.sleep(forTimeInterval: options.interval)
    }
case "devices":
    let devices: [StoreReader.DeviceRow]
    do { devices = try openStore(options.db).devices(limit: options.limit) } catch { fail("\(error)") }
    if options.json {
        for device in devices {
            print(
                jsonLine([
                    "device": device.device, "kind": device.kind, "last_seen_ms": device.lastSeenMs,
                    "fw": device.firmware ?? NSNull(), "hw": device.hardware ?? NSNull(), "seq_gaps": device.seqGaps,
                    "duplicates": device.duplicates, "readings": device.readings,
                ]))
        }
    } else {
        table(
            ["DEVICE", "KIND", "LAST SEEN", "FW", "HW", "GAPS", "DUPS", "READINGS"],
            devices.map {
                [
                    $0.device, $0.kind, age($0.lastSeenMs), $0.firmware ?? "-", $0.hardware ?? "-", String($0.seqGaps),
                    String($0.duplicates), String($0.readings),
                ]
            })
    }
case "rejects":
    let rejects: [StoreReader.RejectRow]
    do { rejects = try openStore(options.db).rejects(limit: options.limit) } catch { fail("\(error)") }
    if options.json {
        for reject in rejects {
            print(
                jsonLine([
                    "ts_ms": reject.tsMs, "topic": reject.topic, "reason": reject.reason, "detail": reject.detail,
                ]))
        }
    } else {
        table(
            ["WHEN", "REASON", "TOPIC", "DETAIL"],
            rejects.map { [age($0.tsMs), $0.reason, String($0.topic.prefix(60)), String($0.detail.prefix(80))] })
    }
case "token":
    guard options.positional == ["new"] else { fail("usage: gwctl token new --role viewer|operator", code: 64) }
    guard let role = options.role, ["viewer", "operator"].contains(role) else {
        fail("--role must be viewer or operator", code: 64)
    }
    let token: String
    do { token = "gw_" + Hex.encode(try SecureRandom.bytes(32)) } catch { fail("\(error)") }
    print("token: \(token)")
    print("Give the token to the client; put only its hash in http.tokens of gatewayd's config:")
    print(jsonLine(["name": options.name, "role": role, "sha256": SHA256.hex(Array(token.utf8))]))
default:
    fail("unknown command \(options.command)\n\(usage)", code: 64)
}
