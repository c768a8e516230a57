import Gateway
import JSON
import Logging
import Version

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

let usage = """
    usage: gatewayd --config FILE          run the gateway
           gatewayd --check-config FILE    list every problem in FILE, exit 1 if any
           gatewayd --print-default-config print a configuration with every key and its default
           gatewayd --version

    """

func fail(_ message: String, code: Int32) -> Never {
    let bytes = Array((message + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(code)
}

/// The arguments, from the kernel's copy when the Swift runtime saw none: it misses them when
/// some LD_PRELOAD shims are loaded (libfaketime, which the clock-jump tests use).
func commandLineArguments() -> [String] {
    if !CommandLine.arguments.isEmpty { return CommandLine.arguments }
    guard let raw = FileManager.default.contents(atPath: "/proc/self/cmdline"), raw.last == 0 else { return [] }
    return raw.dropLast().split(separator: 0, omittingEmptySubsequences: false).map {
        String(decoding: $0, as: UTF8.self)
    }
}

let arguments = Array(commandLineArguments().dropFirst())
switch arguments.first {
case "--print-default-config":
    print(GatewayConfiguration().json.serialized(pretty: true))
case "--version":
    print("gatewayd \(GatewayVersion.current)")
case "--check-config":
    guard arguments.count == 2 else { fail(usage, code: 64) }
    let (_, problems) = GatewayConfiguration.load(path: arguments[1])
    if problems.isEmpty {
        print("\(arguments[1]): ok")
    } else {
        for problem in problems { print(problem) }
        exit(1)
    }
case "--config", nil:
    var configuration = GatewayConfiguration()
    if arguments.first == "--config" {
        guard arguments.count == 2 else { fail(usage, code: 64) }
        let (loaded, problems) = GatewayConfiguration.load(path: arguments[1])
        guard problems.isEmpty else {
            fail(
                problems.map(\.description).joined(separator: "\n")
                    + "\n\(arguments[1]): \(problems.count) problem(s); gatewayd --check-config \(arguments[1]) lists them",
                code: 78)
        }
        configuration = loaded
    }
    let logger = Logger(level: Logger.Level(name: configuration.log.level) ?? .info)
    do {
        let gateway = try Gateway(configuration: configuration, logger: logger)
        try gateway.runUntilSignalled()
    } catch {
        logger.critical("startup_failed", [("error", "\(error)")])
        exit(1)
    }
case "--help", "-h":
    print(usage)
default:
    fail("gatewayd: unknown argument \(arguments[0])\n" + usage, code: 64)
}
