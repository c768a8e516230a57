/// Writes the Prometheus text exposition format, version 0.0.4.
///
/// Families are written in the order given; label values are escaped (backslash, quote,
/// newline) so a hostile device id or reject detail cannot break the scrape.
public struct PrometheusText {
    public private(set) var text = ""

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public init() {
        text.reserveCapacity(16 * 1024)
    }

    public mutating func family(_ name: String, type: String, help: String) {
        text += "# HELP \(name) \(Self.escape(help))\n"
        text += "# TYPE \(name) \(type)\n"
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name
        appendLabels(labels)
        text += " "
        text += Self.format(value)
        text += "\n"
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Int64) {
        text += name
        appendLabels(labels)
        text += " \(value)\n"
    }

    /// A whole single-sample family.
    public mutating func gauge(_ name: String, help: String, _ value: Double) {
        family(name, type: "gauge", help: help)
        sample(name, [], value)
    }

    public mutating func counter(_ name: String, help: String, _ value: Int64) {
        family(name, type: "counter", help: help)
        sample(name, [], value)
    }

    public mutating func counter(_ name: String, help: String, _ value: Double) {
        family(name, type: "counter", help: help)
        sample(name, [], value)
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram (the family line is the caller's).
    public mutating func histogram(_ name: String, _ labels: [(String, String)] = [], _ snapshot: Histogram.Snapshot) {
        var cumulative: Int64 = 0
        for (index, bound) in snapshot.bounds.enumerated() {
            cumulative += snapshot.counts[index]
            sample(name + "_bucket", labels + [("le", Self.format(bound))], cumulative)
        }
        cumulative += snapshot.counts[snapshot.bounds.count]
        sample(name + "_bucket", labels + [("le", "+Inf")], cumulative)
        sample(name + "_sum", labels, snapshot.sum)
        sample(name + "_count", labels, cumulative)
    }

    private mutating func appendLabels(_ labels: [(String, String)]) {
        guard !labels.isEmpty else { return }
        text += "{"
        for (index, (name, value)) in labels.enumerated() {
            if index > 0 { text += "," }
            text += name
            text += "=\""
            text += Self.escape(value)
            text += "\""
        }
        text += "}"
    }

    static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return value }
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
