import Foundation
import JSON

/// The scaling chart, drawn here as SVG (no plotting library): readings/s end to end for the
/// gateway and for the broker alone, and gatewayd's peak RSS, against the number of devices on a
/// log axis. Reads the JSON lines `gwbench ingest` appends; uses the records labelled `scale`.
enum Chart {
    struct Point {
        var devices: Double
        var value: Double
    }

    static func write(results path: String, to output: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read \(path)") }
        var gateway: [Point] = []
        var broker: [Point] = []
        var rss: [Point] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let record = try JSONParser.parse(Array(line.utf8))
            guard record["label"]?.string == "scale", let devices = record["devices"]?.number,
                let rate = record["readings_per_s"]?.number
            else { continue }
            if record["mode"]?.string == "broker_alone" {
                broker.append(Point(devices: devices, value: rate))
            } else {
                gateway.append(Point(devices: devices, value: rate))
                if let memory = record["gatewayd_peak_rss_mb"]?.number { rss.append(Point(devices: devices, value: memory)) }
            }
        }
        guard !gateway.isEmpty else { throw BenchError("no records labelled scale in \(path)") }
        let svg = render(gateway: gateway.sorted { $0.devices < $1.devices }, broker: broker.sorted { $0.devices < $1.devices },
                         rss: rss.sorted { $0.devices < $1.devices })
        guard FileManager.default.createFile(atPath: output, contents: Data(svg.utf8)) else {
            throw BenchError("cannot write \(output)")
        }
    }

    static func render(gateway: [Point], broker: [Point], rss: [Point]) -> String {
        let width = 720.0
        let height = 420.0
        let left = 80.0
        let right = 70.0
        let top = 50.0
        let bottom = 60.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let allDevices = (gateway + broker).map(\.devices)
        let minLog = floor(log10(max(1, allDevices.min() ?? 10)))
        let maxLog = max(minLog + 1, ceil(log10(max(10, allDevices.max() ?? 100_000))))
        let maxRate = niceCeiling(max(1, (gateway + broker).map(\.value).max() ?? 1))
        let maxRSS = niceCeiling(max(1, rss.map(\.value).max() ?? 1) * 1.2)
        func x(_ devices: Double) -> Double { left + (log10(max(1, devices)) - minLog) / (maxLog - minLog) * plotWidth }
        func yRate(_ value: Double) -> Double { top + plotHeight - value / maxRate * plotHeight }
        func yRSS(_ value: Double) -> Double { top + plotHeight - value / maxRSS * plotHeight }
        func fmt(_ value: Double) -> String { String(format: "%.1f", value) }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(fmt(width / 2))" y="24" text-anchor="middle" font-size="15">Ingest end to end vs devices (2 cores, publisher + broker + gateway)</text>

            """
        // Grid and axes.
        for step in 0...5 {
            let value = maxRate * Double(step) / 5
            let y = yRate(value)
            svg += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(left + plotWidth))\" y2=\"\(fmt(y))\" stroke=\"#e5e5e5\"/>\n"
            svg += "<text x=\"\(fmt(left - 8))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(Int(value / 1000))k</text>\n"
            let memory = maxRSS * Double(step) / 5
            svg += "<text x=\"\(fmt(left + plotWidth + 8))\" y=\"\(fmt(y + 4))\" fill=\"#b45309\">\(Int(memory)) MB</text>\n"
        }
        for exponent in Int(minLog)...Int(maxLog) {
            let devices = pow(10, Double(exponent))
            let xPosition = x(devices)
            svg += "<line x1=\"\(fmt(xPosition))\" y1=\"\(fmt(top))\" x2=\"\(fmt(xPosition))\" y2=\"\(fmt(top + plotHeight))\" stroke=\"#e5e5e5\"/>\n"
            svg += "<text x=\"\(fmt(xPosition))\" y=\"\(fmt(top + plotHeight + 18))\" text-anchor=\"middle\">\(Int(devices))</text>\n"
        }
        svg += "<rect x=\"\(fmt(left))\" y=\"\(fmt(top))\" width=\"\(fmt(plotWidth))\" height=\"\(fmt(plotHeight))\" fill=\"none\" stroke=\"#333\"/>\n"
        svg += "<text x=\"\(fmt(left + plotWidth / 2))\" y=\"\(fmt(height - 14))\" text-anchor=\"middle\">devices (log scale)</text>\n"
        svg += "<text transform=\"translate(18 \(fmt(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">readings/s</text>\n"
        svg += "<text transform=\"translate(\(fmt(width - 14)) \(fmt(top + plotHeight / 2))) rotate(90)\" text-anchor=\"middle\" fill=\"#b45309\">gatewayd peak RSS</text>\n"
        func series(_ points: [Point], _ y: (Double) -> Double, color: String, dash: String = "") -> String {
            guard !points.isEmpty else { return "" }
            let path = points.map { "\(fmt(x($0.devices))),\(fmt(y($0.value)))" }.joined(separator: " ")
            var out = "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2.5\"\(dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\"")/>\n"
            for point in points {
                out += "<circle cx=\"\(fmt(x(point.devices)))\" cy=\"\(fmt(y(point.value)))\" r=\"4\" fill=\"\(color)\"/>\n"
            }
            return out
        }
        svg += series(broker, yRate, color: "#6b7280", dash: "6 4")
        svg += series(gateway, yRate, color: "#2563eb")
        svg += series(rss, yRSS, color: "#b45309", dash: "2 3")
        // Legend.
        let legend = [("#2563eb", "gateway: readings committed/s", ""), ("#6b7280", "broker alone: readings received/s", "6 4"),
                      ("#b45309", "gatewayd peak RSS (right axis)", "2 3")]
        for (index, item) in legend.enumerated() {
            let y = top + 16 + Double(index) * 18
            svg += "<line x1=\"\(fmt(left + 12))\" y1=\"\(fmt(y - 4))\" x2=\"\(fmt(left + 40))\" y2=\"\(fmt(y - 4))\" stroke=\"\(item.0)\" stroke-width=\"2.5\"\(item.2.isEmpty ? "" : " stroke-dasharray=\"\(item.2)\"")/>\n"
            svg += "<text x=\"\(fmt(left + 46))\" y=\"\(fmt(y))\">\(item.1)</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    /// 1, 2 or 5 times a power of ten, at or above `value`.
    static func niceCeiling(_ value: Double) -> Double {
        let magnitude = pow(10, floor(log10(value)))
        for factor in [1.0, 2.0, 5.0, 10.0] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }
}
