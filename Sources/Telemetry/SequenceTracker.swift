/// Follows one device's `seq` stream to count what went missing and what came twice.
///
/// Devices number their messages; the gateway cannot see a message that never arrived, but
/// it can see the hole it leaves. Holes are counted as `gaps` when a higher number arrives,
/// and taken back if the missing message turns up late (a reordered QoS 1 redelivery), so
/// `gaps` is the current number of missing messages, not a count of events.
///
/// The last `windowSize` numbers below the highest are remembered in a bitmap, so a replay
/// within that window is recognised as a duplicate. A number at or below the highest is a
/// restart of the device's counter (reboot, wrap-around), counted in `resets`, when it is
/// further back than the window or when its `ts` is newer than any seen: a replay or a late
/// message carries the time it was measured, which is never after a message numbered above it.
public struct SequenceTracker: Sendable, Equatable {
    public static let windowWords = 16
    public static let windowSize = UInt32(windowWords * 64)

    public private(set) var highest: UInt32?
    /// Bit `i` set: `highest - i` has been seen. Word 0 holds offsets 0–63. Inline, not an
    /// array: a tracker per device, and at 100 000 devices an allocation each was 17 MB.
    @usableFromInline private(set) var words = InlineArray<16, UInt64>(repeating: 0)
    /// The window's words, for storing it.
    public var window: [UInt64] { (0..<Self.windowWords).map { words[$0] } }

    /// The window as the store keeps it (each word little-endian, lowest first), without an
    /// array: the store writes it for every device in every commit.
    @inlinable public func withWindowBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        #if _endian(little)
            return try withUnsafeBytes(of: words) { try body($0) }
        #else
            var stored = words
            for index in 0..<Self.windowWords { stored[index] = words[index].littleEndian }
            return try withUnsafeBytes(of: stored) { try body($0) }
        #endif
    }
    public private(set) var gaps: Int64 = 0
    public private(set) var duplicates: Int64 = 0
    public private(set) var resets: Int64 = 0
    /// The newest `ts` seen, to tell a restarted counter from a replay.
    public private(set) var latestTs: Int64 = .min

    public enum Observation: Sendable, Equatable {
        case first
        case inOrder
        /// Arrived after a jump that left `missing` numbers unseen.
        case afterGap(missing: UInt32)
        /// Filled an earlier gap.
        case late
        case duplicate
        /// Far below the window: the device's counter restarted.
        case reset
    }

    public init() {}

    /// Restores a tracker from its stored form.
    public init(highest: UInt32?, window: [UInt64], gaps: Int64, duplicates: Int64, resets: Int64, latestTs: Int64) {
        self.highest = highest
        if window.count == Self.windowWords {
            for index in 0..<Self.windowWords { words[index] = window[index] }
        }
        self.gaps = gaps
        self.duplicates = duplicates
        self.resets = resets
        self.latestTs = latestTs
    }

    /// True for observations whose message should be stored.
    public static func isNew(_ observation: Observation) -> Bool { observation != .duplicate }

    public mutating func observe(_ seq: UInt32, ts: Int64) -> Observation {
        let newest = ts > latestTs
        if newest { latestTs = ts }
        guard let top = highest else {
            highest = seq
            clearWindow()
            setBit(0)
            return .first
        }
        if seq > top {
            let advance = seq - top
            shift(by: advance)
            setBit(0)
            highest = seq
            if advance == 1 { return .inOrder }
            gaps += Int64(advance - 1)
            return .afterGap(missing: advance - 1)
        }
        let offset = top - seq
        if offset >= Self.windowSize || newest {
            resets += 1
            highest = seq
            clearWindow()
            setBit(0)
            return .reset
        }
        if bit(offset) {
            duplicates += 1
            return .duplicate
        }
        setBit(offset)
        if gaps > 0 { gaps -= 1 }
        return .late
    }

    /// The device announced (in its `hello`) that its counter starts again below what was seen:
    /// forget the window so its next messages are not mistaken for replays.
    public mutating func restart() {
        resets += 1
        highest = nil
        clearWindow()
    }

    private mutating func clearWindow() {
        for index in 0..<Self.windowWords { words[index] = 0 }
    }

    private func bit(_ offset: UInt32) -> Bool {
        words[Int(offset / 64)] & (1 << UInt64(offset % 64)) != 0
    }

    private mutating func setBit(_ offset: UInt32) {
        words[Int(offset / 64)] |= 1 << UInt64(offset % 64)
    }

    /// Moves every remembered number `count` places further from the top.
    private mutating func shift(by count: UInt32) {
        guard count < Self.windowSize else {
            clearWindow()
            return
        }
        let wholeWords = Int(count / 64)
        let bits = UInt64(count % 64)
        for index in stride(from: Self.windowWords - 1, through: 0, by: -1) {
            let source = index - wholeWords
            var value: UInt64 = 0
            if source >= 0 {
                value = words[source] << bits
                if bits > 0, source - 1 >= 0 { value |= words[source - 1] >> (64 - bits) }
            }
            words[index] = value
        }
    }

    public static func == (a: SequenceTracker, b: SequenceTracker) -> Bool {
        a.highest == b.highest && a.gaps == b.gaps && a.duplicates == b.duplicates && a.resets == b.resets
            && a.latestTs == b.latestTs && (0..<windowWords).allSatisfy { a.words[$0] == b.words[$0] }
    }
}
