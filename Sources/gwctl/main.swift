import API
import Arguments
import Foundation
import JSON
import RingStore

/// gwctl: the operator's tool. Read commands go to gatewayd's REST API; `stats` and `watch`
/// read a store file directly (read-only, safe beside a running gatewayd) for use on the box.
let gatewayOption = OptionSpec(
    "--gateway", help: "the gateway's API base URL (default http://127.0.0.1:8080)", environment: "GWCTL_GATEWAY")
let tokenOption = OptionSpec("--token", help: "bearer token", environment: "GWCTL_TOKEN")
let jsonOption = OptionSpec("--json", value: false, help: "print the API's JSON instead of a table")
let caOption = OptionSpec(
    "--cacert", help: "CA file to verify an https gateway with (default: the system's CA store)",
    environment: "GWCTL_CACERT")
let limitOption = OptionSpec("--limit", help: "rows at most")
let kindOption = OptionSpec("--kind", help: "vehicle or water")
let dbOption = OptionSpec("--db", help: "store file (default var/gateway.db)", environment: "GWCTL_DB")

let parser = ArgumentParser(
    tool: "gwctl",
    commands: [
        CommandSpec("health", summary: "status, connections, store fill, backlog and headroom"),
        CommandSpec(
            "devices", summary: "one line per device: kind, last seen, online, firmware, loss counters",
            options: [kindOption, limitOption, OptionSpec("--all", value: false, help: "follow cursors to the end")]),
        CommandSpec(
            "device", summary: "one device and the latest value of each signal", arguments: ["ID"],
            options: [kindOption]),
        CommandSpec(
            "series", summary: "buckets of one signal with a sparkline", arguments: ["DEVICE", "SIGNAL"],
            options: [
                OptionSpec("--from", help: "unix ms, RFC 3339 or now-DURATION (default now-24h)"),
                OptionSpec("--to", help: "as --from (default now)"),
                OptionSpec("--step", help: "bucket size: 30s, 5m, 1h ... (default 60s)"), kindOption,
            ]),
        CommandSpec(
            "alerts", summary: "alerts raised now (or all raises and clears)",
            options: [
                OptionSpec("--state", help: "active (default) or all"),
                OptionSpec("--since", help: "unix ms or RFC 3339"),
                limitOption,
            ]),
        CommandSpec("rejects", summary: "recent rejected messages and counts per reason", options: [limitOption]),
        CommandSpec("map", summary: "gauges (state, level, forecast) and vehicle positions; --json gives the GeoJSON"),
        CommandSpec(
            "token", summary: "token new --role viewer|operator [--name NAME]: a token and its http.tokens line",
            arguments: ["new"],
            options: [OptionSpec("--role", help: "viewer or operator"), OptionSpec("--name", help: "who holds it")]),
        CommandSpec(
            "sensor", summary: "sensor set ID --lat --lon --radius-m: where a gauge is (operator token)",
            arguments: ["set", "ID"],
            options: [
                OptionSpec("--lat", help: "latitude, degrees"), OptionSpec("--lon", help: "longitude, degrees"),
                OptionSpec("--radius-m", help: "metres of road the gauge speaks for"),
            ]),
        CommandSpec("stats", summary: "offline: counts from a store file", options: [dbOption]),
        CommandSpec(
            "watch", summary: "offline: a line per interval from a store file (Ctrl-C ends)",
            options: [dbOption, OptionSpec("--interval", help: "seconds between lines (default 1)")]),
    ],
    globalOptions: [gatewayOption, tokenOption, caOption, jsonOption])

func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("gwctl: \(message)\n".utf8))
    exit(code)
}

let arguments: ParsedArguments
do {
    arguments = try parser.parse(
        Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
} catch .helpRequested(let command) {
    print(parser.help(for: command))
    exit(0)
} catch {
    fail("\(error)\n\n\(parser.help(for: nil))", code: 64)
}

let client = APIClient(
    base: arguments.value("--gateway") ?? "http://127.0.0.1:8080", token: arguments.value("--token"),
    caFile: arguments.value("--cacert"))
let wantsJSON = arguments.flag("--json")

func run() throws(ClientError) {
    switch arguments.command {
    case "health": try Commands.health()
    case "devices": try Commands.devices()
    case "device": try Commands.device(arguments.arguments[0])
    case "series": try Commands.series(arguments.arguments[0], arguments.arguments[1])
    case "alerts": try Commands.alerts()
    case "rejects": try Commands.rejects()
    case "map": try Commands.map()
    case "token": Commands.token()
    case "sensor": try Commands.sensorSet(arguments.arguments[1])
    case "stats": Offline.stats(path: arguments.value("--db") ?? "var/gateway.db")
    case "watch":
        let interval = arguments.value("--interval").map { Double($0) ?? -1 } ?? 1
        guard interval > 0 else { fail("--interval must be a number of seconds above 0", code: 64) }
        Offline.watch(path: arguments.value("--db") ?? "var/gateway.db", interval: interval)
    default: fail("unknown command \(arguments.command)", code: 64)
    }
}

do {
    try run()
} catch {
    fail(error.description, code: error.exitCode)
}
