import TestSupport
import Testing

@testable import Aggregation

@Suite struct SeriesIndexTests {
    /// Ids are dense and stable through growth, and `sortedIDs` lists them in key order
    /// however they arrived (seeded).
    @Test(arguments: [11 as UInt64, 12, 13])
    func idsStayStableAndSortInKeyOrder(seed: UInt64) {
        var random = SplitMix(seed: seed)
        var index = SeriesIndex()
        var assigned: [SeriesKey: Int32] = [:]
        for round in 0..<4 {
            for _ in 0..<3_000 {
                let key = SeriesKey(device: Int64(random.next() % 5_000), signal: Int(random.next() % 40))
                let id = index.id(for: key)
                if let before = assigned[key] { #expect(id == before) } else { assigned[key] = id }
            }
            let sorted = index.sortedIDs()
            #expect(sorted.count == assigned.count, "round \(round)")
            #expect(zip(sorted, sorted.dropFirst()).allSatisfy { index.keys[Int($0)] < index.keys[Int($1)] })
        }
        #expect(Set(assigned.values) == Set((0..<Int32(assigned.count))))
        for (key, id) in assigned { #expect(index.find(key) == id) }
        #expect(index.find(SeriesKey(device: 9_999, signal: 1)) == nil)
    }
}

@Suite struct WindowPagesTests {
    /// A slot keeps what WindowStats keeps, for any order of readings (seeded).
    @Test(arguments: [21 as UInt64, 22])
    func slotsAgreeWithWindowStats(seed: UInt64) {
        var random = SplitMix(seed: seed)
        let start: Int64 = 1_767_225_600_000
        var pages = WindowPages(startMs: start)
        var spare: [[WindowPages.Slot]] = []
        var expected: [Int32: WindowStats] = [:]
        for _ in 0..<20_000 {
            let id = Int32(random.next() % 2_000)
            let ts = start + Int64(random.next() % 60_000)
            let value = Double(Int(random.next() % 2_001) - 1_000) / 10
            pages.add(id: id, ts: ts, value: value, spare: &spare)
            expected[id, default: WindowStats()].add(value, ts: ts)
        }
        #expect(pages.present == expected.count)
        for id in Int32(0)..<2_100 { #expect(pages.stats(id) == expected[id]) }
        pages.clear(5)
        #expect(pages.stats(5) == nil)
        pages.release(into: &spare, keeping: 10)
        #expect(spare.count == 4)
        var reused = WindowPages(startMs: start)
        reused.add(id: 3, ts: start, value: 1, spare: &spare)
        #expect(reused.stats(4) == nil, "a reused page starts empty")
        #expect(spare.count == 3)
    }
}
