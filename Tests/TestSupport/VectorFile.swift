public import Foundation
public import JSON

/// One file of firmware test vectors from `Firmware-Protocols/vectors/`.
public struct VectorFile: Sendable {
    public let name: String
    public let nowMs: Int64
    public let vectors: [JSONValue]

    public static let all = [
        "obd-pids.json", "obd-dtc.json", "obd-hello.json", "obd-gps.json", "water-level.json", "envelope.json",
    ]

    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Firmware-Protocols/vectors")

    public static func load(_ name: String) throws -> VectorFile {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        let document = try JSONParser.parse(Array(data))
        guard case .int(let now) = document["now_ms"], case .array(let vectors) = document["vectors"] else {
            throw VectorError.malformed(name)
        }
        return VectorFile(name: name, nowMs: now, vectors: vectors)
    }
}

public enum VectorError: Error { case malformed(String) }

/// The vector's payload bytes: `payload_hex` when present (for bytes that are not UTF-8), else `payload`.
public func payloadBytes(_ vector: JSONValue) -> [UInt8] {
    if let hex = vector["payload_hex"]?.string {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
    return Array((vector["payload"]?.string ?? "").utf8)
}
