// swift-tools-version:6.0
import PackageDescription

/// Applied to every target so the whole package builds under the same rules.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "telemetry-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatewayd", targets: ["gatewayd"]),
        .executable(name: "gwsim", targets: ["gwsim"]),
        .executable(name: "gwctl", targets: ["gwctl"]),
        .executable(name: "gwbench", targets: ["gwbench"]),
        .executable(name: "gwfuzz", targets: ["gwfuzz"]),
    ],
    targets: [
        // C libraries, each wrapped once by exactly one Swift module.
        .systemLibrary(
            name: "CMosquitto", pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(
            name: "CCrypto", pkgConfig: "libssl",
            providers: [.apt(["libssl-dev"])]),

        // Pure modules.
        .target(name: "JSON", swiftSettings: swiftSettings),
        .target(name: "Logging", swiftSettings: swiftSettings),
        .target(name: "Telemetry", dependencies: ["JSON"], swiftSettings: swiftSettings),
        .target(name: "Aggregation", swiftSettings: swiftSettings),
        .target(name: "Alerts", dependencies: ["JSON", "Settings"], swiftSettings: swiftSettings),
        .target(name: "Metrics", swiftSettings: swiftSettings),
        .target(name: "Geo", swiftSettings: swiftSettings),
        .target(name: "Advisories", dependencies: ["Geo"], swiftSettings: swiftSettings),
        .target(name: "Suggest", swiftSettings: swiftSettings),
        .target(name: "Arguments", dependencies: ["Suggest"], swiftSettings: swiftSettings),
        // The configuration file's keys, declared once by the module whose settings they are.
        .target(name: "Settings", dependencies: ["JSON", "Suggest"], swiftSettings: swiftSettings),
        .target(name: "Delta", swiftSettings: swiftSettings),
        .target(name: "Threads", swiftSettings: swiftSettings),

        // C wrappers.
        .target(
            name: "MQTT", dependencies: ["CMosquitto", "Logging", "Threads", "Lifecycle"], swiftSettings: swiftSettings),
        .target(name: "SQLite", dependencies: ["CSQLite"], swiftSettings: swiftSettings),
        .target(name: "Crypto", dependencies: ["CCrypto"], swiftSettings: swiftSettings),
        .target(name: "HTTP", dependencies: ["Crypto", "Logging", "Threads"], swiftSettings: swiftSettings),
        .target(name: "OTA", dependencies: ["JSON", "Crypto", "Telemetry"], swiftSettings: swiftSettings),
        .target(
            name: "Campaigns",
            dependencies: [
                "OTA", "SQLite", "MQTT", "Crypto", "JSON", "Logging", "Telemetry", "Threads", "Lifecycle", "Settings",
            ],
            swiftSettings: swiftSettings),

        // Fleet OTA over the city link: a gateway's end (FleetLink) and the operator's depot.
        .target(
            name: "Fleet",
            dependencies: [
                "Campaigns", "OTA", "MQTT", "SQLite", "Crypto", "JSON", "Logging", "Lifecycle", "Threads", "Telemetry",
            ],
            swiftSettings: swiftSettings),

        // Storage and wiring.
        .target(
            name: "RingStore",
            dependencies: [
                "SQLite", "Telemetry", "Aggregation", "Alerts", "Advisories", "Geo", "Logging", "JSON", "Settings",
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Gateway",
            dependencies: [
                "MQTT", "RingStore", "Telemetry", "Alerts", "Crypto", "JSON", "Logging", "API", "Metrics", "Suggest",
                "Advisories", "Geo", "Campaigns", "Systemd", "Threads", "Version", "Ingest", "Upstream", "Lifecycle",
                "Privacy", "Fleet", "Settings",
            ],
            swiftSettings: swiftSettings),

        .target(
            name: "API",
            dependencies: [
                "HTTP", "RingStore", "Telemetry", "Metrics", "Crypto", "JSON", "Logging", "Suggest", "Advisories",
                "Geo",
                "Alerts", "Campaigns", "OTA", "Threads", "Lifecycle", "Console", "Settings",
            ],
            swiftSettings: swiftSettings),

        // Thin executables.
        .executableTarget(
            name: "gatewayd", dependencies: ["Gateway", "Logging", "Version", "Settings"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "gwsim", dependencies: ["MQTT", "Telemetry", "Logging", "OTA", "Delta", "Crypto", "JSON"],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "gwbench",
            dependencies: [
                "MQTT", "SQLite", "JSON", "Logging", "RingStore", "Telemetry", "Advisories", "Alerts", "Geo",
                "Upstream", "Privacy", "Aggregation",
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "gwctl",
            dependencies: [
                "RingStore", "API", "Arguments", "JSON", "HTTP", "Crypto", "OTA", "Delta", "Telemetry", "Version",
                "Fleet", "MQTT", "Logging", "SQLite",
            ],
            swiftSettings: swiftSettings),
        .target(name: "Systemd", swiftSettings: swiftSettings),
        // The data path: messages in, batches committed (Ingest); the outbox out to the city (Upstream).
        .target(
            name: "Ingest",
            dependencies: [
                "MQTT", "RingStore", "Telemetry", "Alerts", "Advisories", "Geo", "JSON", "Logging", "Metrics",
                "Threads", "Lifecycle", "Settings",
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Upstream",
            dependencies: [
                "MQTT", "RingStore", "Telemetry", "Crypto", "JSON", "Logging", "Threads", "Version", "Lifecycle",
                "Privacy", "Settings",
            ],
            swiftSettings: swiftSettings),
        .target(name: "Lifecycle", dependencies: ["Logging"], swiftSettings: swiftSettings),
        .target(name: "Privacy", dependencies: ["Crypto", "Settings"], swiftSettings: swiftSettings),
        // The web console's page, stylesheet and script, compiled into the binary (no files to install).
        .target(
            name: "Console",
            resources: [
                .embedInCode("Assets/index.html"), .embedInCode("Assets/app.css"), .embedInCode("Assets/app.js"),
            ],
            swiftSettings: swiftSettings),
        .target(name: "Version", swiftSettings: swiftSettings),
        .target(
            name: "FuzzTargets",
            dependencies: ["Telemetry", "HTTP", "OTA", "Delta", "Crypto", "JSON", "Gateway", "Fleet"],
            swiftSettings: swiftSettings),
        // libFuzzer harness when built with -sanitize=fuzzer -DFUZZING (.ci/fuzz.sh); a replay tool otherwise.
        .executableTarget(name: "gwfuzz", dependencies: ["FuzzTargets"], swiftSettings: swiftSettings),

        .target(name: "TestSupport", dependencies: ["JSON"], path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "LoggingTests", dependencies: ["Logging"], swiftSettings: swiftSettings),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TelemetryTests", dependencies: ["Telemetry", "JSON", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "RingStoreTests",
            dependencies: ["RingStore", "SQLite", "Telemetry", "Aggregation", "Alerts", "TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(name: "MQTTTests", dependencies: ["MQTT"], swiftSettings: swiftSettings),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["Gateway", "JSON", "Advisories", "RingStore", "Telemetry", "Settings"],
            swiftSettings: swiftSettings),
        .testTarget(name: "LifecycleTests", dependencies: ["Lifecycle", "Logging"], swiftSettings: swiftSettings),
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "Ingest", "Advisories", "Alerts", "Geo", "JSON", "Logging", "MQTT", "RingStore", "SQLite", "Telemetry",
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "UpstreamTests",
            dependencies: [
                "Upstream", "JSON", "Advisories", "Alerts", "Aggregation", "RingStore", "Telemetry", "TestSupport",
                "Privacy", "Crypto",
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "AggregationTests", dependencies: ["Aggregation", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "AlertsTests", dependencies: ["Alerts"], swiftSettings: swiftSettings),
        .testTarget(name: "CryptoTests", dependencies: ["Crypto"], swiftSettings: swiftSettings),
        .testTarget(name: "GeoTests", dependencies: ["Geo", "Advisories"], swiftSettings: swiftSettings),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "Logging"], swiftSettings: swiftSettings),
        .testTarget(name: "ArgumentsTests", dependencies: ["Arguments"], swiftSettings: swiftSettings),
        .testTarget(name: "DeltaTests", dependencies: ["Delta", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CampaignsTests", dependencies: ["Campaigns", "OTA", "Telemetry"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FleetTests",
            dependencies: ["Fleet", "Campaigns", "OTA", "Crypto", "JSON", "Telemetry", "TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "OTATests", dependencies: ["OTA", "Crypto", "JSON", "Telemetry", "Delta", "TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "APITests", dependencies: ["API", "Crypto", "Metrics", "RingStore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "MQTT", "SQLite", "Gateway", "Telemetry", "JSON", "Logging", "TestSupport", "Crypto", "OTA", "Version",
                "Privacy", "Fleet", "Campaigns",
            ],
            swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)
