/// The `tgdiff1` patch format, documented byte by byte in `Firmware-Protocols/ota.md`.
///
/// bsdiff's control triples, interleaved with their data so a vehicle can apply a patch as
/// it streams in, with bsdiff's "diff" bytes (mostly zero) run-length coded because the
/// project has no general compressor to hand:
///
///     header  "TGDIFF01" | old length u64 LE | new length u64 LE        (24 bytes)
///     record  add uvarint | copy uvarint | seek svarint
///             add bytes as runs: { zeros uvarint | literals uvarint | literal bytes }
///             until the runs cover `add` bytes
///             copy bytes, verbatim
///
/// An add run writes `old[p + i] &+ literal` (or `old[p + i]` for zeros), p advancing; copy
/// bytes are written as they are; then `seek` moves p. Records repeat until `new length`
/// bytes are written.
public enum DeltaFormat {
    public static let name = "tgdiff1"
    public static let magic: [UInt8] = Array("TGDIFF01".utf8)
    public static let headerLength = 24
    /// Longest varint accepted: 10 bytes carry 64 bits.
    static let maxVarintBytes = 10
}

/// Why a patch could not be applied. Carries where, so a firmware log line says enough.
public enum DeltaError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic
    case oldLengthMismatch(expected: UInt64, actual: UInt64)
    case newLengthTooLarge(UInt64, limit: UInt64)
    case malformedVarint(patchOffset: UInt64)
    case runOverflowsRecord(patchOffset: UInt64)
    case recordOverflowsImage(patchOffset: UInt64)
    case oldReadOutOfRange(position: Int64, length: Int, patchOffset: UInt64)
    case oldImageUnreadable(position: Int64)
    case trailingBytes(patchOffset: UInt64)
    case truncated(written: UInt64, expected: UInt64)

    public var description: String {
        switch self {
        case .badMagic: "not a tgdiff1 patch (magic \"TGDIFF01\" missing)"
        case .oldLengthMismatch(let expected, let actual):
            "the patch is for an old image of \(expected) bytes, this one has \(actual)"
        case .newLengthTooLarge(let length, let limit):
            "the patch would write \(length) bytes, more than the \(limit) allowed"
        case .malformedVarint(let offset): "malformed varint at patch byte \(offset)"
        case .runOverflowsRecord(let offset): "a run at patch byte \(offset) is longer than its record"
        case .recordOverflowsImage(let offset): "the record at patch byte \(offset) writes past the new image's end"
        case .oldReadOutOfRange(let position, let length, let offset):
            "the record at patch byte \(offset) reads old bytes \(position)..<\(position + Int64(length)), outside the old image"
        case .oldImageUnreadable(let position): "the old image could not be read at \(position)"
        case .trailingBytes(let offset): "bytes after the end of the patch at \(offset)"
        case .truncated(let written, let expected): "the patch ended after \(written) of \(expected) bytes"
        }
    }
}
