import API
import Arguments
import Foundation
import JSON
import OTA
import RingStore
import Version

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

let deviceFileOptions = [
    OptionSpec(
        "--passwd", help: "mosquitto password file (default /etc/mosquitto/telemetry-gateway.passwd)",
        environment: "GWCTL_BROKER_PASSWD"),
    OptionSpec(
        "--acl", help: "mosquitto ACL file (default /etc/mosquitto/telemetry-gateway.acl)",
        environment: "GWCTL_BROKER_ACL"),
    OptionSpec(
        "--broker-pid",
        help:
            "broker pid file to signal a reload (default /run/mosquitto/mosquitto.pid, else systemctl reload mosquitto; none: no reload)",
        environment: "GWCTL_BROKER_PID"),
]

let releaseOptions = [
    OptionSpec("--version", help: "semantic version, for people (e.g. 2.4.1)"),
    OptionSpec("--counter", help: "release counter: must exceed every vehicle's installed one (anti-rollback)"),
    OptionSpec("--hw", help: "hardware id the image is for"),
    OptionSpec("--key", help: "private key file(s), comma-separated for a signature threshold"),
    OptionSpec("--from", help: "the image vehicles run now: adds a binary delta from it"),
    OptionSpec("--vins", help: "target VINs, comma-separated"),
    OptionSpec("--all", value: false, help: "target every vehicle of --hw"),
    OptionSpec("--expires-days", help: "days the manifest stays valid (default 30)"),
    OptionSpec("--name", help: "release name (default: the image's file name)"),
]

let depotOption = OptionSpec("--depot", help: "the operator's depot directory (blobs and depot.db)")
let cityOptions = [
    OptionSpec("--broker", help: "city broker nodes, host:port[,host:port...] (MQTT over TLS)"),
    OptionSpec("--broker-ca", help: "CA file the city broker's certificate is checked against"),
    OptionSpec("--broker-cert", help: "this account's client certificate on the city broker"),
    OptionSpec("--broker-key", help: "its private key"),
    OptionSpec("--prefix", help: "upstream.topic_prefix of the gateways (default city)"),
    depotOption,
]
let campaignOptions = [
    OptionSpec("--waves", help: "cumulative percentages of targets per wave (default 100), e.g. 5,25,100"),
    OptionSpec("--success-pct", help: "installed share that starts the next wave (default 95)"),
    OptionSpec("--abort-failure-pct", help: "failed share of finished vehicles that aborts (default 20)"),
    OptionSpec("--abort-min-finished", help: "finished vehicles before the abort rule applies (default 5)"),
    OptionSpec("--timeout", help: "seconds of silence before a vehicle's attempt times out (default 900)"),
    OptionSpec("--retries", help: "further attempts after a timeout or failed install (default 2)"),
    OptionSpec("--window", help: "local hours when offers go out, e.g. 01:00-05:00"),
]

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
            "token",
            summary:
                "token new --role viewer|operator [--name NAME] [--scope positions]: a token and its http.tokens line",
            arguments: ["new"],
            options: [
                OptionSpec("--role", help: "viewer or operator"), OptionSpec("--name", help: "who holds it"),
                OptionSpec("--scope", help: "positions: may see individual vehicle positions"),
            ]),
        CommandSpec(
            "sensor", summary: "sensor set ID --lat --lon --radius-m: where a gauge is (operator token)",
            arguments: ["set", "ID"],
            options: [
                OptionSpec("--lat", help: "latitude, degrees"), OptionSpec("--lon", help: "longitude, degrees"),
                OptionSpec("--radius-m", help: "metres of road the gauge speaks for"),
            ]),
        CommandSpec(
            "ota keygen", summary: "an operator signing key pair: NAME.key (0600) and NAME.pub",
            options: [OptionSpec("--out", help: "file name without extension")]),
        CommandSpec(
            "ota sign", summary: "offline: make and sign a release manifest for IMAGE (no gateway needed)",
            arguments: ["IMAGE"],
            options: releaseOptions + [
                OptionSpec("--out", help: "manifest file (default: standard output)"),
                OptionSpec("--delta-out", help: "where the delta goes with --from (default IMAGE.tgdiff)"),
            ]),
        CommandSpec(
            "ota push",
            summary: "sign (with --key) or take --manifest, upload image and delta (resumable), start a campaign",
            arguments: ["IMAGE"],
            options: releaseOptions + [
                OptionSpec(
                    "--manifest", help: "a manifest signed elsewhere (instead of --key and the release options)"),
                OptionSpec("--delta", help: "with --manifest: the delta file it names"),
            ] + campaignOptions),
        CommandSpec(
            "ota status", summary: "campaigns, or one campaign's vehicles with progress; --city: a fleet campaign",
            arguments: ["[CAMPAIGN]"],
            options: [
                OptionSpec("--watch", value: false, help: "refresh every second until the campaign ends"),
                OptionSpec("--city", value: false, help: "the fleet campaign CAMPAIGN, from the depot's reports"),
                depotOption,
            ]),
        CommandSpec(
            "fleet push",
            summary: "sign (or take --manifest) a release, put it in the depot, announce it to every gateway; "
                + "--campaign NAME starts a signed fleet campaign",
            arguments: ["IMAGE"],
            options: releaseOptions + cityOptions + campaignOptions + [
                OptionSpec("--manifest", help: "a manifest signed elsewhere"),
                OptionSpec("--delta", help: "with --manifest: the delta file it names"),
                OptionSpec("--campaign", help: "the campaign's name (1-64 of A-Z a-z 0-9 . _ -), new each time"),
            ]),
        CommandSpec(
            "fleet serve", summary: "the depot: answer gateways' fetches from --depot and record their reports",
            options: cityOptions + [
                OptionSpec("--client-id", help: "MQTT client id (default ota-depot)"),
                OptionSpec(
                    "--tally-key",
                    help: "the depot's own Ed25519 key (gwctl ota keygen) that signs tallies; gateways list its public half"),
            ]),
        CommandSpec(
            "fleet announce",
            summary: "publish a campaign's release and orders again to gateways that joined after the push",
            arguments: ["CAMPAIGN"],
            options: cityOptions + [OptionSpec("--to", help: "gateway ids, comma-separated")]),
    ] + FleetDocument.Verb.allCases.map { verb in
        CommandSpec(
            "fleet \(verb.rawValue)", summary: "a signed \(verb.rawValue) to every gateway of a fleet campaign",
            arguments: ["CAMPAIGN"],
            options: cityOptions + [OptionSpec("--key", help: "private key file(s), comma-separated")])
    } + [
        CommandSpec("ota list", summary: "campaigns, newest first"),
        CommandSpec("ota pause", summary: "stop offering and tell vehicles to pause", arguments: ["CAMPAIGN"]),
        CommandSpec("ota resume", summary: "resume a paused campaign", arguments: ["CAMPAIGN"]),
        CommandSpec("ota cancel", summary: "end a campaign; vehicles drop what they fetched", arguments: ["CAMPAIGN"]),
        CommandSpec("ota vehicles", summary: "firmware each vehicle last reported"),
        CommandSpec(
            "device add", summary: "on the board: enroll a device at the broker (password and ACL), then reload it",
            arguments: ["ID"],
            options: deviceFileOptions + [
                OptionSpec("--kind", help: "vehicle or water (default: from the id's form)"),
                OptionSpec("--rotate", value: false, help: "give an enrolled device a new password"),
                OptionSpec("--password-out", help: "write the password to this new file (0600) instead of printing it"),
            ]),
        CommandSpec(
            "device remove", summary: "on the board: take a device's credentials and topics away, then reload",
            arguments: ["ID"], options: deviceFileOptions),
        CommandSpec(
            "device list", summary: "on the board: the devices enrolled at the broker", options: deviceFileOptions),
        CommandSpec(
            "device forget",
            summary: "erase everything the gateway holds about a vehicle and tell the city side (operator token)",
            arguments: ["VIN"]),
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
} catch .versionRequested {
    print("gwctl \(GatewayVersion.current)")
    exit(0)
} catch {
    fail("\(error)\n\n\(parser.help(for: error.command))", code: 64)
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
    case "device forget": try Commands.forget(arguments.arguments[0])
    case "series": try Commands.series(arguments.arguments[0], arguments.arguments[1])
    case "alerts": try Commands.alerts()
    case "rejects": try Commands.rejects()
    case "map": try Commands.map()
    case "token": Commands.token()
    case "sensor": try Commands.sensorSet(arguments.arguments[1])
    case "ota keygen": OTACommands.keygen()
    case "ota sign": OTACommands.sign(arguments.arguments[0])
    case "ota push": try OTACommands.push(arguments.arguments[0])
    case "ota status" where arguments.flag("--city"):
        guard let campaign = arguments.arguments.first else { fail("--city needs the campaign's name", code: 64) }
        FleetCommands.status(campaign: campaign)
    case "ota status": try OTACommands.status(arguments.arguments.first)
    case "fleet push": FleetCommands.push(arguments.arguments[0])
    case "fleet serve": FleetCommands.serve()
    case "fleet announce": FleetCommands.announce(campaign: arguments.arguments[0])
    case let command where command.hasPrefix("fleet "):
        guard let verb = FleetDocument.Verb(rawValue: String(command.dropFirst(6))) else { fail("unknown \(command)") }
        FleetCommands.command(verb, campaign: arguments.arguments[0])
    case "ota list": try OTACommands.list()
    case "ota pause", "ota resume", "ota cancel":
        try OTACommands.control(String(arguments.command.dropFirst(4)), arguments.arguments[0])
    case "ota vehicles": try OTACommands.vehicles()
    case "device add", "device remove", "device list":
        let pid = arguments.value("--broker-pid")
        let files = DeviceCommands.Files(
            passwd: arguments.value("--passwd") ?? "/etc/mosquitto/telemetry-gateway.passwd",
            acl: arguments.value("--acl") ?? "/etc/mosquitto/telemetry-gateway.acl",
            pidFile: pid == "none" ? nil : pid ?? "/run/mosquitto/mosquitto.pid", pidFileGiven: pid != nil)
        switch arguments.command {
        case "device add":
            try DeviceCommands.add(
                arguments.arguments[0], files: files, forcedKind: arguments.value("--kind"),
                rotate: arguments.flag("--rotate"), passwordOut: arguments.value("--password-out"))
        case "device remove": try DeviceCommands.remove(arguments.arguments[0], files: files)
        default: try DeviceCommands.list(files: files, json: wantsJSON)
        }
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
