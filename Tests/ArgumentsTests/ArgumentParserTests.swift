import Testing

@testable import Arguments

@Suite struct ArgumentParserTests {
    let parser = ArgumentParser(
        tool: "gwctl",
        commands: [
            CommandSpec(
                "devices", summary: "list",
                options: [OptionSpec("--limit", help: "n"), OptionSpec("--all", value: false, help: "all")]),
            CommandSpec(
                "series", summary: "one", arguments: ["DEVICE", "SIGNAL"], options: [OptionSpec("--step", help: "s")]),
            CommandSpec("health", summary: "h"),
        ],
        globalOptions: [
            OptionSpec("--token", help: "t", environment: "GWCTL_TOKEN"), OptionSpec("--json", value: false, help: "j"),
        ])

    static let good: [([String], [String: String], ParsedArguments)] = [
        (["health"], [:], ParsedArguments(command: "health", arguments: [], values: [:], flags: [])),
        (["health", "--json"], [:], ParsedArguments(command: "health", arguments: [], values: [:], flags: ["--json"])),
        (
            ["devices", "--limit", "5", "--all"], [:],
            ParsedArguments(command: "devices", arguments: [], values: ["--limit": "5"], flags: ["--all"])
        ),
        (
            ["devices", "--limit=7"], [:],
            ParsedArguments(command: "devices", arguments: [], values: ["--limit": "7"], flags: [])
        ),
        (
            ["series", "--step", "5m", "bus-1", "speed_kmh"], [:],
            ParsedArguments(command: "series", arguments: ["bus-1", "speed_kmh"], values: ["--step": "5m"], flags: [])
        ),
        (
            ["series", "bus-1", "--", "-x"], [:],
            ParsedArguments(command: "series", arguments: ["bus-1", "-x"], values: [:], flags: [])
        ),
        (
            ["health"], ["GWCTL_TOKEN": "abc"],
            ParsedArguments(command: "health", arguments: [], values: ["--token": "abc"], flags: [])
        ),
        (
            ["health", "--token", "given"], ["GWCTL_TOKEN": "env"],
            ParsedArguments(command: "health", arguments: [], values: ["--token": "given"], flags: [])
        ),
        // Options before the command, as people type them.
        (["--json", "health"], [:], ParsedArguments(command: "health", arguments: [], values: [:], flags: ["--json"])),
        (
            ["--token", "t1", "--json", "devices", "--limit", "3"], [:],
            ParsedArguments(
                command: "devices", arguments: [], values: ["--token": "t1", "--limit": "3"], flags: ["--json"])
        ),
        (
            ["--limit=4", "devices"], [:],
            ParsedArguments(command: "devices", arguments: [], values: ["--limit": "4"], flags: [])
        ),
    ]

    @Test(arguments: good)
    func parses(_ argv: [String], _ environment: [String: String], _ expected: ParsedArguments) throws {
        #expect(try parser.parse(argv, environment: environment) == expected)
    }

    static let bad: [([String], ArgumentError)] = [
        ([], .missingCommand),
        (["devcies"], .unknownCommand("devcies", suggestion: "devices")),
        (["frobnicate"], .unknownCommand("frobnicate", suggestion: nil)),
        (["devices", "--limt", "3"], .unknownOption("--limt", command: "devices", suggestion: "--limit")),
        (["devices", "--limit"], .missingValue(option: "--limit", command: "devices")),
        (["devices", "--all=yes"], .unexpectedValue(option: "--all", command: "devices")),
        (["series", "bus-1"], .wrongArgumentCount(command: "series", expected: ["DEVICE", "SIGNAL"], got: 1)),
        (["health", "extra"], .wrongArgumentCount(command: "health", expected: [], got: 1)),
        (["--help"], .helpRequested(command: nil)),
        (["help", "series"], .helpRequested(command: "series")),
        (["series", "-h"], .helpRequested(command: "series")),
        (["--json", "--help"], .helpRequested(command: nil)),
        (["--version"], .versionRequested),
        (["--token"], .missingValue(option: "--token", command: "gwctl")),
        (["--limit", "3", "health"], .unknownOption("--limit", command: "health", suggestion: nil)),
    ]

    @Test(arguments: bad)
    func refuses(_ argv: [String], _ expected: ArgumentError) {
        #expect(throws: expected) { _ = try parser.parse(argv) }
    }

    /// A usage error names its command, so the caller prints that command's usage.
    @Test func errorsNameTheirCommand() {
        #expect(ArgumentError.wrongArgumentCount(command: "series", expected: [], got: 1).command == "series")
        #expect(ArgumentError.unknownOption("--x", command: "devices", suggestion: nil).command == "devices")
        #expect(ArgumentError.unknownCommand("ota pus", suggestion: nil).command == "ota")
        #expect(ArgumentError.unknownCommand("devcies", suggestion: nil).command == nil)
    }

    @Test func helpListsCommandsAndOptions() {
        let overview = parser.help()
        #expect(overview.contains("  devices  list"))
        #expect(overview.contains("--token VALUE"))
        #expect(overview.contains("$GWCTL_TOKEN"))
        let series = parser.help(for: "series")
        #expect(series.hasPrefix("usage: gwctl series DEVICE SIGNAL [options]"))
        #expect(series.contains("--step VALUE"))
    }
}

/// Two-word commands ("ota push") and optional trailing arguments ("[CAMPAIGN]").
@Suite struct TwoWordCommandTests {
    let parser = ArgumentParser(
        tool: "gwctl",
        commands: [
            CommandSpec("ota push", summary: "p", arguments: ["IMAGE"], options: [OptionSpec("--version", help: "v")]),
            CommandSpec("ota status", summary: "s", arguments: ["[CAMPAIGN]"]),
            CommandSpec("health", summary: "h"),
        ],
        globalOptions: [])

    @Test func parsesBothWordsAndOptionalArguments() throws {
        #expect(
            try parser.parse(["ota", "push", "fw.bin", "--version", "1.0.0"])
                == ParsedArguments(command: "ota push", arguments: ["fw.bin"], values: ["--version": "1.0.0"], flags: []))
        #expect(try parser.parse(["ota", "status"]).arguments == [])
        #expect(try parser.parse(["ota", "status", "3"]).arguments == ["3"])
        #expect(throws: ArgumentError.self) { try parser.parse(["ota", "status", "3", "4"]) }
        #expect(throws: ArgumentError.self) { try parser.parse(["ota", "push"]) }
    }

    @Test func aGroupAloneOrATypoSuggestsASubcommand() throws {
        // The group alone, or with --help: its own usage (exit 0), not an error.
        #expect(throws: ArgumentError.helpRequested(command: "ota")) { try parser.parse(["ota"]) }
        #expect(throws: ArgumentError.helpRequested(command: "ota")) { try parser.parse(["ota", "--help"]) }
        #expect(throws: ArgumentError.helpRequested(command: "ota")) { try parser.parse(["help", "ota"]) }
        let group = parser.help(for: "ota")
        #expect(group.hasPrefix("usage: gwctl ota COMMAND [options]"))
        #expect(group.contains("  ota push    p") && group.contains("  ota status  s") && !group.contains("health"))
        // --version is the release option of ota push, after the command; first, the tool's.
        #expect(try parser.parse(["ota", "push", "fw.bin", "--version", "2.0.0"]).values["--version"] == "2.0.0")
        #expect(throws: ArgumentError.versionRequested) { try parser.parse(["--version"]) }
        #expect(throws: ArgumentError.unknownCommand("ota pus", suggestion: "ota push")) {
            try parser.parse(["ota", "pus", "x"])
        }
        #expect(throws: ArgumentError.helpRequested(command: "ota push")) { try parser.parse(["help", "ota", "push"]) }
    }
}
