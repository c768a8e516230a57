import Glibc

/// Makes a `tgdiff1` patch from an old and a new image, by bsdiff's method: sort the old
/// image's suffixes, then walk the new image finding long approximate matches, so code that
/// only moved (with its addresses shifted) becomes runs of small differences.
///
/// Runs on the operator's machine (`gwctl ota push --from`), never on a gateway or vehicle.
public enum DeltaEncoder {
    public static func diff(old: [UInt8], new: [UInt8]) -> [UInt8] {
        var output = DeltaFormat.magic
        appendUInt64LE(UInt64(old.count), to: &output)
        appendUInt64LE(UInt64(new.count), to: &output)
        guard !new.isEmpty else { return output }
        guard !old.isEmpty else {
            appendRecord(add: [], copy: new[...], seek: 0, to: &output)
            return output
        }
        old.withUnsafeBufferPointer { old in
            new.withUnsafeBufferPointer { new in
                encode(old: old, new: new, into: &output)
            }
        }
        return output
    }

    private static func encode(old: UnsafeBufferPointer<UInt8>, new: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) {
        let suffixes = SuffixArray.build(old)
        let oldSize = old.count
        let newSize = new.count
        var scan = 0
        var length = 0
        var position = 0
        var lastScan = 0
        var lastPosition = 0
        var lastOffset = 0
        var diffBytes: [UInt8] = []
        suffixes.withUnsafeBufferPointer { I in
            while scan < newSize {
                var oldScore = 0
                scan += length
                var scsc = scan
                while scan < newSize {
                    length = search(I, old, new, from: scan, 0, oldSize, &position)
                    while scsc < scan + length {
                        if scsc + lastOffset < oldSize && old[scsc + lastOffset] == new[scsc] { oldScore += 1 }
                        scsc += 1
                    }
                    if (length == oldScore && length != 0) || length > oldScore + 8 { break }
                    if scan + lastOffset < oldSize && old[scan + lastOffset] == new[scan] { oldScore -= 1 }
                    scan += 1
                }
                guard length != oldScore || scan == newSize else { continue }

                // How far forward from the last match the old bytes still mostly agree.
                var s = 0
                var best = 0
                var lengthForward = 0
                var i = 0
                while lastScan + i < scan && lastPosition + i < oldSize {
                    if old[lastPosition + i] == new[lastScan + i] { s += 1 }
                    i += 1
                    if s * 2 - i > best * 2 - lengthForward {
                        best = s
                        lengthForward = i
                    }
                }
                // And backward from the new match.
                var lengthBackward = 0
                if scan < newSize {
                    s = 0
                    best = 0
                    i = 1
                    while scan >= lastScan + i && position >= i {
                        if old[position - i] == new[scan - i] { s += 1 }
                        if s * 2 - i > best * 2 - lengthBackward {
                            best = s
                            lengthBackward = i
                        }
                        i += 1
                    }
                }
                if lastScan + lengthForward > scan - lengthBackward {
                    let overlap = (lastScan + lengthForward) - (scan - lengthBackward)
                    s = 0
                    var bestShift = 0
                    var lengthShift = 0
                    for i in 0..<overlap {
                        if new[lastScan + lengthForward - overlap + i] == old[lastPosition + lengthForward - overlap + i] {
                            s += 1
                        }
                        if new[scan - lengthBackward + i] == old[position - lengthBackward + i] { s -= 1 }
                        if s > bestShift {
                            bestShift = s
                            lengthShift = i + 1
                        }
                    }
                    lengthForward += lengthShift - overlap
                    lengthBackward -= lengthShift
                }

                diffBytes.removeAll(keepingCapacity: true)
                for i in 0..<lengthForward { diffBytes.append(new[lastScan + i] &- old[lastPosition + i]) }
                let copyStart = lastScan + lengthForward
                let copyEnd = scan - lengthBackward
                let seek = (position - lengthBackward) - (lastPosition + lengthForward)
                appendRecord(add: diffBytes, copy: new[copyStart..<copyEnd], seek: Int64(seek), to: &output)

                lastScan = scan - lengthBackward
                lastPosition = position - lengthBackward
                lastOffset = position - scan
            }
        }
    }

    /// Binary search over the sorted suffixes for the longest match of `new[from...]`.
    private static func search(
        _ I: UnsafeBufferPointer<Int>, _ old: UnsafeBufferPointer<UInt8>, _ new: UnsafeBufferPointer<UInt8>,
        from: Int, _ start: Int, _ end: Int, _ position: inout Int
    ) -> Int {
        var start = start
        var end = end
        while end - start >= 2 {
            let middle = start + (end - start) / 2
            if compare(old, I[middle], new, from) < 0 {
                start = middle
            } else {
                end = middle
            }
        }
        let x = matchLength(old, I[start], new, from)
        let y = matchLength(old, I[end], new, from)
        if x > y {
            position = I[start]
            return x
        }
        position = I[end]
        return y
    }

    private static func matchLength(
        _ old: UnsafeBufferPointer<UInt8>, _ oldStart: Int, _ new: UnsafeBufferPointer<UInt8>, _ newStart: Int
    ) -> Int {
        let limit = min(old.count - oldStart, new.count - newStart)
        var i = 0
        while i < limit && old[oldStart + i] == new[newStart + i] { i += 1 }
        return i
    }

    /// memcmp over the shorter of the two tails.
    private static func compare(
        _ old: UnsafeBufferPointer<UInt8>, _ oldStart: Int, _ new: UnsafeBufferPointer<UInt8>, _ newStart: Int
    ) -> Int32 {
        let count = min(old.count - oldStart, new.count - newStart)
        guard count > 0 else { return 0 }
        return memcmp(old.baseAddress! + oldStart, new.baseAddress! + newStart, count)
    }

    private static func appendRecord(add: [UInt8], copy: some Collection<UInt8>, seek: Int64, to output: inout [UInt8]) {
        appendVarint(UInt64(add.count), to: &output)
        appendVarint(UInt64(copy.count), to: &output)
        appendVarint(UInt64(bitPattern: (seek << 1) ^ (seek >> 63)), to: &output)
        // Runs: zeros (old byte kept) then literals (differences); a literal run ends only at
        // three or more zeros, since a new run costs at least two bytes of lengths.
        var index = 0
        while index < add.count {
            var zeros = 0
            while index + zeros < add.count && add[index + zeros] == 0 { zeros += 1 }
            let literalStart = index + zeros
            var literalEnd = literalStart
            while literalEnd < add.count {
                if add[literalEnd] == 0 {
                    var run = 0
                    while literalEnd + run < add.count && add[literalEnd + run] == 0 && run < 3 { run += 1 }
                    if run >= 3 || literalEnd + run == add.count { break }
                    literalEnd += run
                } else {
                    literalEnd += 1
                }
            }
            appendVarint(UInt64(zeros), to: &output)
            appendVarint(UInt64(literalEnd - literalStart), to: &output)
            output.append(contentsOf: add[literalStart..<literalEnd])
            index = literalEnd
        }
        output.append(contentsOf: copy)
    }

    static func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            output.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }

    static func appendUInt64LE(_ value: UInt64, to output: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { output.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}
