/// Random access to the image a patch was made against: on a vehicle, the installed firmware
/// on flash; in tests, an array.
public protocol OldImage {
    var count: Int { get }
    /// Fills `buffer` from `offset`; false when it cannot (I/O error).
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) -> Bool
}

extension Array: OldImage where Element == UInt8 {
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard offset >= 0, offset + buffer.count <= count else { return false }
        withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + buffer.count)]))
        }
        return true
    }
}

/// Applies a `tgdiff1` patch as its bytes arrive, in pieces of any size, writing the new image
/// in order through `output`. Memory stays at one 64 KiB buffer whatever the image size.
///
/// Every length and position in the patch is checked before it is used, so a hostile patch
/// fails with a `DeltaError` and never reads or writes out of bounds; the caller still checks
/// the SHA-256 of what was written, which is what the signature covers.
public struct DeltaApplier {
    private enum Phase {
        case header
        case recordAdd, recordCopy, recordSeek
        case runZeros, runLiterals
        case literalBytes(remaining: UInt64)
        case copyBytes(remaining: UInt64)
        case done
    }

    public let maxNewLength: UInt64
    public private(set) var newLength: UInt64 = 0
    public private(set) var written: UInt64 = 0
    private var phase = Phase.header
    private var header: [UInt8] = []
    private var varint: UInt64 = 0
    private var varintShift: UInt64 = 0
    private var varintBytes = 0
    private var addRemaining: UInt64 = 0
    private var copyLength: UInt64 = 0
    private var oldPosition: Int64 = 0
    private var consumed: UInt64 = 0
    private var recordStart: UInt64 = 0
    private var pendingSeek: Int64 = 0
    private var varintStart: UInt64 = 0
    private var oldBuffer = [UInt8](repeating: 0, count: 65_536)
    private var outBuffer: [UInt8] = []

    /// `maxNewLength` is the signed length of the new image: a patch may not write more.
    public init(maxNewLength: UInt64) {
        self.maxNewLength = maxNewLength
        outBuffer.reserveCapacity(65_536)
    }

    public var isComplete: Bool {
        if case .done = phase { return true }
        return false
    }

    public mutating func consume(
        _ bytes: UnsafeRawBufferPointer, old: some OldImage, output: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var index = 0
        while index < bytes.count {
            switch phase {
            case .header:
                let take = min(DeltaFormat.headerLength - header.count, bytes.count - index)
                header.append(contentsOf: bytes[index..<(index + take)])
                index += take
                consumed += UInt64(take)
                if header.count == DeltaFormat.headerLength { try startRecords(old: old) }
            case .recordAdd, .recordCopy, .recordSeek, .runZeros, .runLiterals:
                let byte = bytes[index]
                index += 1
                consumed += 1
                if let value = try feedVarint(byte) { try varintComplete(value, old: old, output: output) }
            case .literalBytes(let remaining):
                let take = Int(min(remaining, UInt64(bytes.count - index), UInt64(oldBuffer.count)))
                try addLiterals(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]), old: old)
                index += take
                consumed += UInt64(take)
                let left = remaining - UInt64(take)
                phase = left == 0 ? try afterRun() : .literalBytes(remaining: left)
                try flushIfFull(output)
            case .copyBytes(let remaining):
                let take = Int(min(remaining, UInt64(bytes.count - index)))
                outBuffer.append(contentsOf: bytes[index..<(index + take)])
                written += UInt64(take)
                index += take
                consumed += UInt64(take)
                let left = remaining - UInt64(take)
                phase = left == 0 ? try endRecord() : .copyBytes(remaining: left)
                try flushIfFull(output)
            case .done:
                throw DeltaError.trailingBytes(patchOffset: consumed)
            }
        }
        try flush(output)
    }

    /// Call when the patch has ended: it fails unless the whole new image was written.
    public func finish() throws {
        guard isComplete else { throw DeltaError.truncated(written: written, expected: newLength) }
    }

    private mutating func startRecords(old: some OldImage) throws {
        guard Array(header[0..<8]) == DeltaFormat.magic else { throw DeltaError.badMagic }
        let oldLength = readUInt64LE(header, 8)
        newLength = readUInt64LE(header, 16)
        guard oldLength == UInt64(old.count) else {
            throw DeltaError.oldLengthMismatch(expected: oldLength, actual: UInt64(old.count))
        }
        guard newLength <= maxNewLength else { throw DeltaError.newLengthTooLarge(newLength, limit: maxNewLength) }
        phase = newLength == 0 ? .done : .recordAdd
        recordStart = consumed
    }

    private mutating func feedVarint(_ byte: UInt8) throws -> UInt64? {
        varintBytes += 1
        if varintBytes == 1 { varintStart = consumed - 1 }
        let bits = UInt64(byte & 0x7F)
        // The tenth byte may carry only the 64th bit.
        guard varintBytes <= DeltaFormat.maxVarintBytes, varintShift < 63 || bits <= 1 else {
            throw DeltaError.malformedVarint(patchOffset: consumed - 1)
        }
        varint |= bits << varintShift
        varintShift += 7
        guard byte & 0x80 == 0 else { return nil }
        defer {
            varint = 0
            varintShift = 0
            varintBytes = 0
        }
        return varint
    }

    private mutating func varintComplete(
        _ value: UInt64, old: some OldImage, output: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        switch phase {
        case .recordAdd:
            addRemaining = value
            phase = .recordCopy
        case .recordCopy:
            copyLength = value
            let remaining = newLength - written
            guard addRemaining <= remaining, copyLength <= remaining - addRemaining else {
                throw DeltaError.recordOverflowsImage(patchOffset: recordStart)
            }
            phase = .recordSeek
        case .recordSeek:
            pendingSeek = Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
            // addRemaining fits the image (checked above), so the sum cannot overflow.
            guard oldPosition >= 0, oldPosition + Int64(addRemaining) <= Int64(old.count) else {
                throw DeltaError.oldReadOutOfRange(
                    position: oldPosition, length: Int(addRemaining), patchOffset: recordStart)
            }
            phase = addRemaining > 0 ? .runZeros : try afterAdd()
        case .runZeros:
            guard value <= addRemaining else { throw DeltaError.runOverflowsRecord(patchOffset: varintStart) }
            try addZeros(value, old: old, output: output)
            phase = .runLiterals
        case .runLiterals:
            guard value <= addRemaining else { throw DeltaError.runOverflowsRecord(patchOffset: varintStart) }
            phase = value > 0 ? .literalBytes(remaining: value) : try afterRun()
        default:
            break
        }
    }

    /// After a run: another run, or the copy bytes, or the next record.
    private mutating func afterRun() throws -> Phase {
        addRemaining > 0 ? .runZeros : try afterAdd()
    }

    private mutating func afterAdd() throws -> Phase {
        copyLength > 0 ? .copyBytes(remaining: copyLength) : try endRecord()
    }

    private mutating func endRecord() throws -> Phase {
        let (moved, overflow) = oldPosition.addingReportingOverflow(pendingSeek)
        guard !overflow else {
            throw DeltaError.oldReadOutOfRange(position: oldPosition, length: 0, patchOffset: recordStart)
        }
        oldPosition = moved
        recordStart = consumed
        return written == newLength ? .done : .recordAdd
    }

    private mutating func addZeros(
        _ count: UInt64, old: some OldImage, output: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var left = count
        while left > 0 {
            let take = Int(min(left, UInt64(oldBuffer.count)))
            try readOld(take, old: old)
            outBuffer.append(contentsOf: oldBuffer[0..<take])
            left -= UInt64(take)
            try flushIfFull(output)
        }
    }

    private mutating func addLiterals(_ literals: UnsafeRawBufferPointer, old: some OldImage) throws {
        try readOld(literals.count, old: old)
        for index in 0..<literals.count { outBuffer.append(oldBuffer[index] &+ literals[index]) }
    }

    private mutating func readOld(_ count: Int, old: some OldImage) throws {
        let position = Int(oldPosition)
        let ok = oldBuffer.withUnsafeMutableBytes { buffer in
            old.read(at: position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]))
        }
        guard ok else { throw DeltaError.oldImageUnreadable(position: oldPosition) }
        oldPosition += Int64(count)
        addRemaining -= UInt64(count)
        written += UInt64(count)
    }

    private mutating func flushIfFull(_ output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if outBuffer.count >= 65_536 { try flush(output) }
    }

    private mutating func flush(_ output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !outBuffer.isEmpty else { return }
        try outBuffer.withUnsafeBytes { try output($0) }
        outBuffer.removeAll(keepingCapacity: true)
    }

    private func readUInt64LE(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << UInt64(8 * index) }
        return value
    }
}

extension DeltaApplier {
    /// Applies a whole patch held in memory (tests, tools).
    public static func apply(patch: [UInt8], old: [UInt8], maxNewLength: UInt64 = .max) throws -> [UInt8] {
        var applier = DeltaApplier(maxNewLength: maxNewLength)
        var result: [UInt8] = []
        try patch.withUnsafeBytes { bytes in
            try applier.consume(bytes, old: old) { result.append(contentsOf: $0) }
        }
        try applier.finish()
        return result
    }
}
