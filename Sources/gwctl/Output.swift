import Foundation
import JSON

/// Aligned columns, two spaces apart, header first.
func table(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
        }.joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}

func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// "12s ago", "5m ago", "3h ago", "2d ago".
func age(_ ms: Int64) -> String {
    let seconds = max(0, nowMs() - ms) / 1000
    if seconds < 120 { return "\(seconds)s ago" }
    if seconds < 7200 { return "\(seconds / 60)m ago" }
    if seconds < 172_800 { return "\(seconds / 3600)h ago" }
    return "\(seconds / 86_400)d ago"
}

func utc(_ ms: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// One line of block characters, one per value, low to high; at most `width` (values are
/// averaged into that many columns).
func sparkline(_ values: [Double], width: Int = 60) -> String {
    guard !values.isEmpty else { return "" }
    let blocks = Array("▁▂▃▄▅▆▇█")
    var columns = values
    if values.count > width {
        columns = (0..<width).map { column in
            let start = column * values.count / width
            let end = max(start + 1, (column + 1) * values.count / width)
            let slice = values[start..<end]
            return slice.reduce(0, +) / Double(slice.count)
        }
    }
    let low = columns.min()!
    let high = columns.max()!
    guard high > low else { return String(repeating: blocks[3], count: columns.count) }
    return String(
        columns.map { blocks[min(blocks.count - 1, Int((($0 - low) / (high - low)) * Double(blocks.count)))] })
}

func number(_ value: JSONValue?) -> String {
    switch value {
    case .int(let number)?: return String(number)
    case .double(let number)?:
        if number == number.rounded(), abs(number) < 1e12 { return String(Int64(number)) }
        return String(format: "%.2f", number)
    case .null?, nil: return "-"
    case .bool(let flag)?: return flag ? "yes" : "no"
    case .string(let text)?: return text
    default: return "?"
    }
}

func text(_ value: JSONValue?) -> String {
    value?.string ?? "-"
}

func integer(_ value: JSONValue?) -> Int64 {
    if case .int(let number)? = value { return number }
    if case .double(let number)? = value { return Int64(number) }
    return 0
}
