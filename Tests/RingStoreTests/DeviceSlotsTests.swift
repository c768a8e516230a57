import Telemetry
import TestSupport
import Testing

@testable import RingStore

/// The paged per-device tables: pure logic, held against a dictionary.
@Suite struct DeviceSlotsTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func agreeWithADictionaryUnderRandomWritesAndErasures(seed: UInt64) {
        var random = SplitMix(seed: seed)
        var slots = DeviceSlots<Int?>(empty: nil)
        var model: [Int64: Int] = [:]
        for step in 0..<20_000 {
            // Mostly dense ids, as SQLite hands them out, with a few far ones.
            let id = random.next() % 8 == 0 ? Int64(random.next() % 1_000_000) : Int64(random.next() % 5_000)
            if random.next() % 5 == 0 {
                slots[id] = nil
                model[id] = nil
            } else {
                slots[id] = step
                model[id] = step
            }
        }
        for id in model.keys { #expect(slots[id] == model[id]) }
        let probes = (0..<2_000).map { _ in Int64(random.next() % 1_100_000) }
        #expect(probes.allSatisfy { slots[$0] == model[$0] })
    }

    /// Row ids past the paged range (a tampered file, or sixteen million devices seen) and
    /// negative ones are kept too, without a page table of their size.
    @Test func keepsRowIDsPastThePages() {
        var slots = DeviceSlots<Int?>(empty: nil)
        let far: [Int64] = [-1, DeviceSlots<Int?>.maxPagedRowID, .max, 3]
        for (value, id) in far.enumerated() { slots[id] = value }
        #expect(far.enumerated().allSatisfy { slots[$1] == $0 })
        var seen: [Int64: Int] = [:]
        slots.walk { id, value in if let value { seen[id] = value } }
        #expect(seen.count == far.count)
    }
}
