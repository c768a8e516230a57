import Logging
import Threads

/// One message as it arrived from the broker, copied out of libmosquitto's memory.
public struct InboundMessage: Sendable {
    public var topic: String
    /// The payload, or its first bytes when it was larger than the client's limit.
    public var payload: [UInt8]
    /// The payload's length on the wire; larger than `payload.count` when truncated.
    public var wireLength: Int
    public var qos: Int32
    public var retained: Bool
    /// When the message was handed over, on the monotonic clock.
    public var receivedAtNanos: UInt64

    public var isTruncated: Bool { wireLength > payload.count }

    public init(
        topic: String, payload: [UInt8], wireLength: Int, qos: Int32, retained: Bool, receivedAtNanos: UInt64
    ) {
        self.topic = topic
        self.payload = payload
        self.wireLength = wireLength
        self.qos = qos
        self.retained = retained
        self.receivedAtNanos = receivedAtNanos
    }
}

/// The bounded hand-over from libmosquitto's network thread to the pipeline.
///
/// When it is full, `push` blocks the network thread: libmosquitto then stops reading the
/// socket and TCP pushes back on the broker, which holds further QoS 1 messages in the
/// persistent session. Messages are taken in batches so the consumer pays for the lock once
/// per batch, not once per message.
public final class InboundBuffer: @unchecked Sendable {
    private let condition = ConditionLock()
    private var ring: [InboundMessage?]
    private var head = 0
    private var count = 0
    private var closed = false
    // Statistics, read under the lock.
    private var pushes: UInt64 = 0
    private var blockedPushes: UInt64 = 0
    private var highWater = 0

    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        ring = Array(repeating: nil, count: capacity)
    }

    /// Adds a message, waiting while the buffer is full. Returns false once the buffer is closed.
    @discardableResult
    public func push(_ message: InboundMessage) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if count == capacity && !closed {
            blockedPushes += 1
            while count == capacity && !closed {
                condition.wait(untilMonotonicNanos: monotonicNanos() + 100_000_000)
            }
        }
        guard !closed else { return false }
        ring[(head + count) % capacity] = message
        count += 1
        pushes += 1
        if count > highWater { highWater = count }
        if count == 1 { condition.broadcast() }
        return true
    }

    /// Moves up to `max` messages into `batch`, waiting until `deadlineNanos` (monotonic) for
    /// the first one. Returns the number moved; zero on timeout or when closed and empty.
    public func drain(into batch: inout [InboundMessage], max: Int, deadlineNanos: UInt64) -> Int {
        condition.lock()
        defer { condition.unlock() }
        while count == 0 && !closed {
            if !condition.wait(untilMonotonicNanos: deadlineNanos) && monotonicNanos() >= deadlineNanos { break }
        }
        let taken = Swift.min(count, max)
        let wasFull = count == capacity
        for _ in 0..<taken {
            batch.append(ring[head].take()!)
            head = (head + 1) % capacity
        }
        count -= taken
        if wasFull && taken > 0 { condition.broadcast() }
        return taken
    }

    /// Wakes every waiter; later pushes are refused, queued messages can still be drained.
    public func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    public var isClosedAndEmpty: Bool { condition.withLock { closed && count == 0 } }

    public struct Statistics: Sendable {
        public var depth: Int
        public var highWater: Int
        public var pushes: UInt64
        public var blockedPushes: UInt64
    }

    public var statistics: Statistics {
        condition.withLock {
            Statistics(depth: count, highWater: highWater, pushes: pushes, blockedPushes: blockedPushes)
        }
    }
}
