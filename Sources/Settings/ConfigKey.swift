public import JSON

/// One key of a configuration section, declared once: its name, its type and range, and where
/// it lives in the section's value. Its default is the value the section has before reading
/// (the struct's initial value, or for a sensor's override the gateway-wide setting).
///
/// Parsing, the unknown-key check and the printed configuration (`--print-default-config`,
/// `GET /v1/config`) all come from one `ConfigSection` of these, where each key used to be
/// named three times — in the known keys, in the parse and in the JSON — and a key added to
/// one and not the others went unnoticed.
///
/// A module declares the section of the settings it owns on its own configuration type
/// (the API its `http` on `APIConfiguration`): the file's keys are read straight into what the
/// module runs on, where a mirror struct in `Gateway` used to be copied into it field by field.
public struct ConfigKey<Section>: Sendable {
    public let name: String
    fileprivate let read: @Sendable (inout ConfigReader, JSONObject?, String, inout Section) -> Void
    fileprivate let write: @Sendable (Section) -> JSONValue

    /// A key holding one value at `field`, read by `read` with the field's value as default.
    private static func value<Value>(
        _ name: String, _ field: any WritableKeyPath<Section, Value> & Sendable,
        read: @escaping @Sendable (inout ConfigReader, JSONObject?, String, Value) -> Value,
        write: @escaping @Sendable (Value) -> JSONValue
    ) -> Self {
        Self(
            name: name,
            read: { reader, object, path, section in
                section[keyPath: field] = read(&reader, object, path, section[keyPath: field])
            }, write: { write($0[keyPath: field]) })
    }

    /// `unit` is the field's units per file unit: `window_s` read into milliseconds is 1000. The
    /// range is the file's, and the file shows the field divided back.
    public static func integer(
        _ name: String, _ field: any WritableKeyPath<Section, Int64> & Sendable, range: ClosedRange<Int64>,
        unit: Int64 = 1
    ) -> Self {
        value(
            name, field, read: { $0.integer($1, name, path: $2, default: $3 / unit, range: range) * unit },
            write: { .int($0 / unit) })
    }

    /// An integer key on a field the module keeps as `Int` (counts and sizes it indexes with).
    public static func integer(
        _ name: String, _ field: any WritableKeyPath<Section, Int> & Sendable, range: ClosedRange<Int64>
    ) -> Self {
        value(
            name, field, read: { Int($0.integer($1, name, path: $2, default: Int64($3), range: range)) },
            write: { .int(Int64($0)) })
    }

    public static func number(
        _ name: String, _ field: any WritableKeyPath<Section, Double> & Sendable, range: ClosedRange<Double>
    ) -> Self {
        value(
            name, field, read: { $0.number($1, name, path: $2, default: $3, range: range) }, write: JSONValue.double)
    }

    public static func flag(_ name: String, _ field: any WritableKeyPath<Section, Bool> & Sendable) -> Self {
        value(name, field, read: { $0.boolean($1, name, path: $2, default: $3) }, write: JSONValue.bool)
    }

    public static func text(_ name: String, _ field: any WritableKeyPath<Section, String> & Sendable) -> Self {
        value(name, field, read: { $0.string($1, name, path: $2, default: $3) ?? $3 }, write: JSONValue.string)
    }

    /// A string that may be absent (written as `null`).
    public static func optionalText(_ name: String, _ field: any WritableKeyPath<Section, String?> & Sendable) -> Self {
        value(
            name, field, read: { $0.string($1, name, path: $2, default: $3) },
            write: { $0.map(JSONValue.string) ?? .null })
    }

    public static func choice(
        _ name: String, _ field: any WritableKeyPath<Section, String> & Sendable, allowed: [String]
    ) -> Self {
        value(
            name, field, read: { $0.choice($1, name, path: $2, default: $3, allowed: allowed) },
            write: JSONValue.string)
    }

    /// One of an enumeration's raw values, listed in its declaration order in problems.
    public static func choice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _ field: any WritableKeyPath<Section, Value> & Sendable
    ) -> Self where Value.RawValue == String {
        value(
            name, field,
            read: { reader, object, path, current in
                let text = reader.choice(
                    object, name, path: path, default: current.rawValue, allowed: Value.allCases.map(\.rawValue))
                return Value(rawValue: text) ?? current
            }, write: { .string($0.rawValue) })
    }

    /// An object of further keys of the same section (`tls` of `broker`).
    public static func group(_ name: String, _ keys: [ConfigKey<Section>]) -> Self {
        let inner = ConfigSection(keys)
        return Self(
            name: name,
            read: { reader, object, path, section in
                inner.read(object, name, path: path, into: &section, reader: &reader)
            }, write: { .object(inner.json($0)) })
    }

    /// A key read and written by code of its own (a list, or a value needing others first).
    public static func custom(
        _ name: String, read: @escaping @Sendable (inout ConfigReader, JSONObject?, String, inout Section) -> Void,
        write: @escaping @Sendable (Section) -> JSONValue
    ) -> Self {
        Self(name: name, read: read, write: write)
    }
}

/// The keys of one configuration object, in the order they are printed and checked.
public struct ConfigSection<Section>: Sendable {
    public let keys: [ConfigKey<Section>]

    public init(_ keys: [ConfigKey<Section>]) {
        self.keys = keys
    }

    public var names: [String] { keys.map(\.name) }

    /// Reads the object `name` of `parent` (at `path`) into `section`, checking for unknown
    /// keys (`alsoKnown` are keys read elsewhere); returns the object for those.
    @discardableResult
    public func read(
        _ parent: JSONObject?, _ name: String, path: String, into section: inout Section,
        reader: inout ConfigReader, alsoKnown: [String] = []
    ) -> JSONObject? {
        let object = reader.object(parent, name, path: path, known: names + alsoKnown)
        readKeys(object, path: path, into: &section, reader: &reader)
        return object
    }

    /// Reads the keys of an object already checked.
    public func readKeys(_ object: JSONObject?, path: String, into section: inout Section, reader: inout ConfigReader) {
        for key in keys { key.read(&reader, object, path + "." + key.name, &section) }
    }

    public func json(_ section: Section) -> JSONObject {
        JSONObject(keys.map { ($0.name, $0.write(section)) })
    }
}
