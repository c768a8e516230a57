import Foundation
import JSON

/// Checks a JSON value against the JSON Schema keywords the gateway's OpenAPI document uses
/// (type, properties, required, additionalProperties, items, minItems, maxItems, enum, const,
/// minimum, maximum, minLength, maxLength, pattern, oneOf, $ref into the document), so a test
/// can hold real responses to what generated clients are told. Returns what does not hold,
/// each with its path; empty when the value conforms.
struct SchemaCheck {
    let document: JSONValue

    func problems(_ value: JSONValue, _ schema: JSONValue, at path: String = "$") -> [String] {
        if let reference = schema["$ref"]?.string {
            let parts = reference.dropFirst(2).split(separator: "/").map(String.init)
            var target: JSONValue? = document
            for part in parts { target = target?[part] }
            guard let target else { return ["\(path): unresolved \(reference)"] }
            return problems(value, target, at: path)
        }
        if let choices = schema["oneOf"]?.arrayValue {
            let matching = choices.filter { problems(value, $0, at: path).isEmpty }.count
            return matching == 1 ? [] : ["\(path): matches \(matching) of the oneOf schemas, not exactly one"]
        }
        var found: [String] = []
        if let type = schema["type"] {
            let allowed = type.arrayValue?.compactMap(\.string) ?? [type.string ?? ""]
            guard allowed.contains(where: { Self.conforms(value, to: $0) }) else {
                return ["\(path): \(value.typeName), documented as \(allowed.joined(separator: " or "))"]
            }
        }
        if let constant = schema["const"], constant != value { found.append("\(path): not \(constant)") }
        if let choices = schema["enum"]?.arrayValue, !choices.contains(value) {
            found.append("\(path): \(value) is not one of \(choices)")
        }
        if let number = value.number {
            if let minimum = schema["minimum"]?.number, number < minimum { found.append("\(path): below \(minimum)") }
            if let maximum = schema["maximum"]?.number, number > maximum { found.append("\(path): above \(maximum)") }
        }
        if case .string(let text) = value {
            if let minimum = schema["minLength"]?.number, Double(text.count) < minimum {
                found.append("\(path): shorter than \(minimum)")
            }
            if let maximum = schema["maxLength"]?.number, Double(text.count) > maximum {
                found.append("\(path): longer than \(maximum)")
            }
            if let pattern = schema["pattern"]?.string, !Self.matches(text, pattern) {
                found.append("\(path): \"\(text)\" does not match \(pattern)")
            }
        }
        if case .array(let items) = value {
            if let minimum = schema["minItems"]?.number, Double(items.count) < minimum {
                found.append("\(path): fewer than \(minimum) items")
            }
            if let maximum = schema["maxItems"]?.number, Double(items.count) > maximum {
                found.append("\(path): more than \(maximum) items")
            }
            if let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() { found += problems(item, itemSchema, at: "\(path)[\(index)]") }
            }
        }
        if case .object(let object) = value {
            let properties = schema["properties"]?.object
            for name in schema["required"]?.arrayValue?.compactMap(\.string) ?? [] where object[name] == nil {
                found.append("\(path).\(name): required, missing")
            }
            for (key, member) in object.members {
                if let propertySchema = properties?[key] {
                    found += problems(member, propertySchema, at: "\(path).\(key)")
                } else if let extra = schema["additionalProperties"] {
                    if extra == .bool(false) {
                        found.append("\(path).\(key): not documented")
                    } else if case .object = extra {
                        found += problems(member, extra, at: "\(path).\(key)")
                    }
                } else if properties != nil {
                    found.append("\(path).\(key): not documented")
                }
            }
        }
        return found
    }

    static func conforms(_ value: JSONValue, to type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
            ("integer", .int), ("number", .int), ("number", .double):
            return true
        case ("integer", .double(let number)): return number.rounded() == number
        default: return false
        }
    }

    static func matches(_ text: String, _ pattern: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
