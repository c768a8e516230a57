/// Per-device state indexed by the device's row id, in fixed pages made on first use.
///
/// Row ids are handed out in order by the `devices` table, and only an erased device leaves a
/// hole, so a page is a run of neighbouring devices. Against a dictionary keyed by name this
/// saves the bucket array sized for twice the devices, the name string kept as its key, and
/// the copy of everything when it doubles: growing adds one page of `pageSize` slots.
public struct DeviceSlots<Element> {
    @inlinable public static var pageSize: Int { 1024 }
    /// Row ids up to this are paged (a page table of 128 KiB at most); any beyond it, which
    /// only sixteen million devices seen or a tampered file give, are kept in a dictionary.
    @inlinable public static var maxPagedRowID: Int64 { 1 << 24 }

    // Inlinable, so that a client module (the ingest's rate limiter) gets the subscript
    // specialised for its element: unspecialised, each access looked up the metadata of
    // `[[Element]]` and `Element?`, about 1 000 instructions a message under callgrind.
    @usableFromInline var pages: [[Element]] = []
    @usableFromInline var beyond: [Int64: Element] = [:]
    @usableFromInline let empty: Element

    /// `empty` is what a slot holds before it is written, and what reading it returns.
    public init(empty: Element) {
        self.empty = empty
    }

    @inlinable public subscript(rowID: Int64) -> Element {
        get {
            guard let (page, slot) = Self.position(rowID) else { return beyond[rowID] ?? empty }
            guard page < pages.count, !pages[page].isEmpty else { return empty }
            return pages[page][slot]
        }
        set {
            guard let (page, slot) = Self.position(rowID) else {
                beyond[rowID] = newValue
                return
            }
            while pages.count <= page { pages.append([]) }
            if pages[page].isEmpty { pages[page] = Array(repeating: empty, count: Self.pageSize) }
            pages[page][slot] = newValue
        }
    }

    /// Every written slot's row id and value, pages first.
    public func walk(_ body: (Int64, Element) -> Void) {
        for (page, slots) in pages.enumerated() {
            for (slot, value) in slots.enumerated() { body(Int64(page * Self.pageSize + slot), value) }
        }
        for (rowID, value) in beyond { body(rowID, value) }
    }

    @inlinable static func position(_ rowID: Int64) -> (page: Int, slot: Int)? {
        guard rowID >= 0, rowID < maxPagedRowID else { return nil }
        return (Int(rowID) / pageSize, Int(rowID) % pageSize)
    }
}
