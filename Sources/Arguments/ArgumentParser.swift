import Suggest

/// An option of a command (or of every command): `--name VALUE` or `--name=VALUE`, or a flag.
public struct OptionSpec: Sendable {
    public var name: String
    public var takesValue: Bool
    public var help: String
    /// Environment variable read when the option is not given.
    public var environment: String?

    public init(_ name: String, value: Bool = true, help: String, environment: String? = nil) {
        self.name = name
        self.takesValue = value
        self.help = help
        self.environment = environment
    }
}

public struct CommandSpec: Sendable {
    public var name: String
    public var summary: String
    /// Names of the positional arguments, for usage lines; "[NAME]" marks an optional one.
    public var arguments: [String]
    public var options: [OptionSpec]

    public init(_ name: String, summary: String, arguments: [String] = [], options: [OptionSpec] = []) {
        self.name = name
        self.summary = summary
        self.arguments = arguments
        self.options = options
    }
}

/// What was parsed: the command, its positional arguments, option values and flags.
public struct ParsedArguments: Sendable, Equatable {
    public var command: String
    public var arguments: [String]
    public var values: [String: String]
    public var flags: Set<String>

    public func value(_ name: String) -> String? { values[name] }
    public func flag(_ name: String) -> Bool { flags.contains(name) }
}

public enum ArgumentError: Error, Equatable, CustomStringConvertible {
    case missingCommand
    case unknownCommand(String, suggestion: String?)
    case unknownOption(String, command: String, suggestion: String?)
    case missingValue(option: String, command: String)
    case unexpectedValue(option: String, command: String)
    case wrongArgumentCount(command: String, expected: [String], got: Int)
    /// `--help` or `-h`: not an error, the caller prints the help for this command or group
    /// of commands (`ota`), nil: all.
    case helpRequested(command: String?)
    /// `--version` before any command: not an error, the caller prints its version.
    case versionRequested

    /// The command (or group) the mistake was made in, so the caller shows that usage and not
    /// the whole list; nil when no command was recognised.
    public var command: String? {
        switch self {
        case .unknownOption(_, let command, _), .missingValue(_, let command), .unexpectedValue(_, let command),
            .wrongArgumentCount(let command, _, _):
            return command
        case .unknownCommand(let name, _):
            let group = name.split(separator: " ").first.map(String.init)
            return name.contains(" ") ? group : nil
        case .helpRequested(let command): return command
        case .missingCommand, .versionRequested: return nil
        }
    }

    public var description: String {
        switch self {
        case .missingCommand:
            return "a command is required"
        case .unknownCommand(let name, let suggestion):
            return "unknown command \"\(name)\"" + (suggestion.map { "; did you mean \"\($0)\"?" } ?? "")
        case .unknownOption(let name, let command, let suggestion):
            return "\(command): unknown option \(name)" + (suggestion.map { "; did you mean \($0)?" } ?? "")
        case .missingValue(let option, let command):
            return "\(command): \(option) needs a value"
        case .unexpectedValue(let option, let command):
            return "\(command): \(option) is a flag and takes no value"
        case .wrongArgumentCount(let command, let expected, let got):
            let names = expected.isEmpty ? "no arguments" : expected.joined(separator: " ")
            return "\(command) takes \(names), got \(got) argument(s)"
        case .helpRequested(let command):
            return "help requested" + (command.map { " for \($0)" } ?? "")
        case .versionRequested:
            return "version requested"
        }
    }
}

/// A small command-line parser: `tool COMMAND [ARGS] [--option VALUE] [--flag]`.
///
/// Options may come before or after the command and its arguments; `--` ends options; a
/// mistyped command or option gets a "did you mean". Environment variables fill options not
/// given. `--version` as the first word asks for the tool's version.
public struct ArgumentParser: Sendable {
    public var tool: String
    public var commands: [CommandSpec]
    /// Options every command accepts.
    public var globalOptions: [OptionSpec]

    public init(tool: String, commands: [CommandSpec], globalOptions: [OptionSpec]) {
        self.tool = tool
        self.commands = commands
        self.globalOptions = globalOptions
    }

    /// Whether `name` is the first word of two-word commands (`ota` of `ota push`).
    func isGroup(_ name: String) -> Bool { commands.contains { $0.name.hasPrefix(name + " ") } }

    /// Options written before the command (`gwctl --json health`), with their values: whether
    /// an option takes a value is looked up among every command's options.
    func leadingOptions(_ rest: inout ArraySlice<String>) throws(ArgumentError) -> [String] {
        let everyOption = globalOptions + commands.flatMap(\.options)
        var leading: [String] = []
        while let argument = rest.first, argument.hasPrefix("-"), argument != "-", argument != "--" {
            if argument == "--help" || argument == "-h" { return leading }
            rest = rest.dropFirst()
            if argument == "--version", leading.isEmpty { throw .versionRequested }
            leading.append(argument)
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if !argument.contains("="), everyOption.contains(where: { $0.name == name && $0.takesValue }) {
                guard let value = rest.popFirst() else { throw .missingValue(option: name, command: tool) }
                leading.append(value)
            }
        }
        return leading
    }

    public func parse(_ argv: [String], environment: [String: String] = [:]) throws(ArgumentError) -> ParsedArguments {
        var rest = argv[...]
        let leading = try leadingOptions(&rest)
        guard var first = rest.popFirst() else { throw .missingCommand }
        if first == "--help" || first == "-h" || first == "help" {
            let words = rest.prefix(2).joined(separator: " ")
            throw .helpRequested(
                command: commands.first { $0.name == words }?.name
                    ?? rest.first.flatMap { name in
                        commands.contains { $0.name == name } || isGroup(name) ? name : nil
                    })
        }
        // Two-word commands ("ota push") are named with a space.
        if let second = rest.first, commands.contains(where: { $0.name == first + " " + second }) {
            first += " " + second
            rest = rest.dropFirst()
        } else if isGroup(first), !commands.contains(where: { $0.name == first }) {
            if rest.first == nil || rest.first == "--help" || rest.first == "-h" {
                throw .helpRequested(command: first)
            }
            let group = commands.map(\.name).filter { $0.hasPrefix(first + " ") }
            throw .unknownCommand(
                rest.first.map { first + " " + $0 } ?? first,
                suggestion: rest.first.flatMap { Suggestion.closest(to: first + " " + $0, in: group) } ?? group.first)
        }
        rest = leading[...] + rest
        guard let spec = commands.first(where: { $0.name == first }) else {
            throw .unknownCommand(first, suggestion: Suggestion.closest(to: first, in: commands.map(\.name)))
        }
        let options = spec.options + globalOptions
        var parsed = ParsedArguments(command: spec.name, arguments: [], values: [:], flags: [])
        var optionsEnded = false
        while let argument = rest.popFirst() {
            if optionsEnded || !argument.hasPrefix("-") || argument == "-" {
                parsed.arguments.append(argument)
                continue
            }
            if argument == "--" {
                optionsEnded = true
                continue
            }
            if argument == "--help" || argument == "-h" { throw .helpRequested(command: spec.name) }
            var name = argument
            var inline: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            }
            guard let option = options.first(where: { $0.name == name }) else {
                throw .unknownOption(
                    name, command: spec.name, suggestion: Suggestion.closest(to: name, in: options.map(\.name)))
            }
            if option.takesValue {
                guard let value = inline ?? rest.popFirst() else {
                    throw .missingValue(option: name, command: spec.name)
                }
                parsed.values[name] = value
            } else {
                guard inline == nil else { throw .unexpectedValue(option: name, command: spec.name) }
                parsed.flags.insert(name)
            }
        }
        for option in options where option.takesValue && parsed.values[option.name] == nil {
            if let variable = option.environment, let value = environment[variable], !value.isEmpty {
                parsed.values[option.name] = value
            }
        }
        // Arguments named "[X]" are optional (and come last).
        let required = spec.arguments.count { !$0.hasPrefix("[") }
        guard (required...spec.arguments.count).contains(parsed.arguments.count) else {
            throw .wrongArgumentCount(command: spec.name, expected: spec.arguments, got: parsed.arguments.count)
        }
        return parsed
    }

    /// The overview (`command` nil) or one command's usage and options.
    public func help(for command: String? = nil) -> String {
        func optionLines(_ options: [OptionSpec]) -> [String] {
            let width = options.map { $0.name.count + ($0.takesValue ? 6 : 0) }.max() ?? 0
            return options.map { option in
                let left = option.name + (option.takesValue ? " VALUE" : "")
                let environment = option.environment.map { " (or $\($0))" } ?? ""
                return "  " + left.padding(to: width) + "  " + option.help + environment
            }
        }
        let group = command.map { name in commands.filter { $0.name.hasPrefix(name + " ") } } ?? []
        if let command, let spec = commands.first(where: { $0.name == command }) {
            var lines = [
                "usage: \(tool) \(([spec.name] + spec.arguments).joined(separator: " ")) [options]", "", spec.summary,
            ]
            if !spec.options.isEmpty { lines += ["", "options:"] + optionLines(spec.options) }
            lines += ["", "global options:"] + optionLines(globalOptions)
            if !group.isEmpty {
                lines += ["", "see also: " + group.map { "\(tool) \($0.name)" }.joined(separator: ", ")]
            }
            return lines.joined(separator: "\n")
        }
        if let command, !group.isEmpty {
            let width = group.map(\.name.count).max() ?? 0
            var lines = ["usage: \(tool) \(command) COMMAND [options]", "", "commands:"]
            lines += group.map { "  " + $0.name.padding(to: width) + "  " + $0.summary }
            lines += ["", "\(tool) \(command) COMMAND --help shows a command's options."]
            return lines.joined(separator: "\n")
        }
        let width = commands.map(\.name.count).max() ?? 0
        var lines = ["usage: \(tool) COMMAND [options]", "", "commands:"]
        lines += commands.map { "  " + $0.name.padding(to: width) + "  " + $0.summary }
        lines += ["", "global options:"] + optionLines(globalOptions)
        lines += ["", "\(tool) COMMAND --help shows a command's options."]
        return lines.joined(separator: "\n")
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
