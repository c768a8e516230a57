/// Suffix sorting by Larsson and Sadakane's qsufsort (the algorithm bsdiff uses): prefix
/// doubling with ternary-split quicksort, O(n log n).
///
/// Why this one rather than SA-IS: it is short, well studied in exactly this use, and the
/// encoder runs on an operator's machine, where its 16 bytes per input byte are affordable.
enum SuffixArray {
    /// The suffix array of `text` with the empty suffix first: `result[0] == text.count`.
    static func build(_ text: UnsafeBufferPointer<UInt8>) -> [Int] {
        let size = text.count
        var order = [Int](repeating: 0, count: size + 1)
        var rank = [Int](repeating: 0, count: size + 1)
        order.withUnsafeMutableBufferPointer { I in
            rank.withUnsafeMutableBufferPointer { V in
                sort(I, V, text)
            }
        }
        return order
    }

    private static func sort(
        _ I: UnsafeMutableBufferPointer<Int>, _ V: UnsafeMutableBufferPointer<Int>, _ text: UnsafeBufferPointer<UInt8>
    ) {
        let size = text.count
        var buckets = [Int](repeating: 0, count: 256)
        for byte in text { buckets[Int(byte)] += 1 }
        for index in 1..<256 { buckets[index] += buckets[index - 1] }
        for index in stride(from: 255, to: 0, by: -1) { buckets[index] = buckets[index - 1] }
        buckets[0] = 0
        for index in 0..<size {
            buckets[Int(text[index])] += 1
            I[buckets[Int(text[index])]] = index
        }
        I[0] = size
        for index in 0..<size { V[index] = buckets[Int(text[index])] }
        V[size] = 0
        for index in 1..<256 where buckets[index] == buckets[index - 1] + 1 { I[buckets[index]] = -1 }
        I[0] = -1

        var h = 1
        while I[0] != -(size + 1) {
            var length = 0
            var index = 0
            while index < size + 1 {
                if I[index] < 0 {
                    length -= I[index]
                    index -= I[index]
                } else {
                    if length != 0 { I[index - length] = -length }
                    length = V[I[index]] - index + 1
                    split(I, V, index, length, h)
                    index += length
                    length = 0
                }
            }
            if length != 0 { I[index - length] = -length }
            h += h
        }
        for index in 0..<(size + 1) { I[V[index]] = index }
    }

    private static func split(
        _ I: UnsafeMutableBufferPointer<Int>, _ V: UnsafeMutableBufferPointer<Int>, _ start: Int, _ length: Int,
        _ h: Int
    ) {
        if length < 16 {
            var k = start
            while k < start + length {
                var j = 1
                var x = V[I[k] + h]
                var i = 1
                while k + i < start + length {
                    if V[I[k + i] + h] < x {
                        x = V[I[k + i] + h]
                        j = 0
                    }
                    if V[I[k + i] + h] == x {
                        I.swapAt(k + j, k + i)
                        j += 1
                    }
                    i += 1
                }
                for i in 0..<j { V[I[k + i]] = k + j - 1 }
                if j == 1 { I[k] = -1 }
                k += j
            }
            return
        }

        let x = V[I[start + length / 2] + h]
        var jj = 0
        var kk = 0
        for i in start..<(start + length) {
            if V[I[i] + h] < x { jj += 1 }
            if V[I[i] + h] == x { kk += 1 }
        }
        jj += start
        kk += jj

        var i = start
        var j = 0
        var k = 0
        while i < jj {
            if V[I[i] + h] < x {
                i += 1
            } else if V[I[i] + h] == x {
                I.swapAt(i, jj + j)
                j += 1
            } else {
                I.swapAt(i, kk + k)
                k += 1
            }
        }
        while jj + j < kk {
            if V[I[jj + j] + h] == x {
                j += 1
            } else {
                I.swapAt(jj + j, kk + k)
                k += 1
            }
        }

        if jj > start { split(I, V, start, jj - start, h) }
        for i in 0..<(kk - jj) { V[I[jj + i]] = kk - 1 }
        if jj == kk - 1 { I[jj] = -1 }
        if start + length > kk { split(I, V, kk, start + length - kk, h) }
    }
}
