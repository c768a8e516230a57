public import RingStore
import Threads

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A few read-only connections to the store, shared by the HTTP threads.
///
/// SQLite connections are not for concurrent use, and opening one per request costs more
/// than the query; a small pool lets reads run in parallel with each other and, thanks to
/// WAL, with the ingest writer.
public final class StorePool: @unchecked Sendable {
    let path: String
    let capacity: Int
    private let lock = ConditionLock()
    private var idle: [StoreReader] = []
    private var opened = 0

    public init(path: String, capacity: Int) {
        self.path = path
        self.capacity = max(1, capacity)
    }

    public func withReader<T>(_ body: (StoreReader) throws -> T) throws -> T {
        let reader = try checkout()
        defer { checkin(reader) }
        return try body(reader)
    }

    private func checkout() throws -> StoreReader {
        lock.lock()
        while idle.isEmpty && opened >= capacity { lock.wait() }
        if let reader = idle.popLast() {
            lock.unlock()
            return reader
        }
        opened += 1
        lock.unlock()
        do {
            return try StoreReader(path: path)
        } catch {
            lock.lock()
            opened -= 1
            lock.signal()
            lock.unlock()
            throw error
        }
    }

    private func checkin(_ reader: StoreReader) {
        lock.lock()
        idle.append(reader)
        lock.signal()
        lock.unlock()
    }
}
