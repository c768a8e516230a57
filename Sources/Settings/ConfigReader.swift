public import JSON
import Suggest

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// One thing wrong with a configuration file, located by its key path.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// Reads typed values out of a JSON object while collecting every problem, so that
/// `--check-config` can list all of them at once instead of stopping at the first.
public struct ConfigReader {
    public private(set) var problems: [ConfigProblem] = []

    public init() {}

    public mutating func problem(_ path: String, _ message: String) {
        problems.append(ConfigProblem(path: path, message: message))
    }

    /// The object at `path`, or nil (with a problem recorded if it is present but not an object).
    public mutating func object(_ parent: JSONObject?, _ key: String, path: String, known: [String]) -> JSONObject? {
        guard let value = parent?[key], value != .null else { return nil }
        guard case .object(let object) = value else {
            problem(path, "must be an object, got \(value.typeName)")
            return nil
        }
        checkUnknownKeys(object, path: path, known: known)
        return object
    }

    public mutating func checkUnknownKeys(_ object: JSONObject, path: String, known: [String]) {
        for key in object.keys where !known.contains(key) {
            let prefix = path.isEmpty ? "" : path + "."
            var message = "unknown key"
            if let suggestion = Suggestion.closest(to: key, in: known) {
                message += "; did you mean \"\(suggestion)\"?"
            }
            problem(prefix + key, message)
        }
    }

    public mutating func string(_ object: JSONObject?, _ key: String, path: String, default value: String?) -> String? {
        guard let raw = object?[key], raw != .null else { return value }
        guard case .string(let text) = raw else {
            problem(path, "must be a string, got \(raw.typeName)")
            return value
        }
        return text
    }

    public mutating func integer(
        _ object: JSONObject?, _ key: String, path: String, default value: Int64, range: ClosedRange<Int64>
    ) -> Int64 {
        guard let raw = object?[key], raw != .null else { return value }
        guard case .int(let number) = raw else {
            problem(path, "must be an integer, got \(raw.typeName)")
            return value
        }
        guard range.contains(number) else {
            problem(path, "must be between \(range.lowerBound) and \(range.upperBound), got \(number)")
            return value
        }
        return number
    }

    public mutating func number(
        _ object: JSONObject?, _ key: String, path: String, default value: Double, range: ClosedRange<Double>
    ) -> Double {
        guard let raw = object?[key], raw != .null else { return value }
        guard let number = raw.number else {
            problem(path, "must be a number, got \(raw.typeName)")
            return value
        }
        guard range.contains(number) else {
            problem(path, "must be between \(range.lowerBound) and \(range.upperBound), got \(number)")
            return value
        }
        return number
    }

    public mutating func boolean(_ object: JSONObject?, _ key: String, path: String, default value: Bool) -> Bool {
        guard let raw = object?[key], raw != .null else { return value }
        guard case .bool(let flag) = raw else {
            problem(path, "must be true or false, got \(raw.typeName)")
            return value
        }
        return flag
    }

    /// Files the gateway will open at start: report now the ones it could not read.
    public mutating func checkReadable(_ files: [(path: String, file: String?)]) {
        for (path, file) in files {
            if let file, access(file, R_OK) != 0 {
                problem(path, "cannot read \(file): \(String(cString: strerror(errno)))")
            }
        }
    }

    public mutating func choice(
        _ object: JSONObject?, _ key: String, path: String, default value: String, allowed: [String]
    ) -> String {
        guard let text = string(object, key, path: path, default: nil) else { return value }
        guard allowed.contains(text) else {
            problem(path, "must be one of \(allowed.joined(separator: ", ")), got \"\(text)\"")
            return value
        }
        return text
    }
}
