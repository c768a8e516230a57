import Foundation
import Logging
import MQTT
import Synchronization
import Testing

func message(_ index: Int) -> InboundMessage {
    InboundMessage(
        topic: "t/\(index)", payload: [UInt8(index & 0xFF)], wireLength: 1, qos: 1, retained: false,
        receivedAtNanos: monotonicNanos())
}

@Suite struct InboundBufferTests {
    @Test func drainsInOrderInBatches() {
        let buffer = InboundBuffer(capacity: 8)
        for index in 0..<5 { #expect(buffer.push(message(index))) }
        var batch: [InboundMessage] = []
        #expect(buffer.drain(into: &batch, max: 3, deadlineNanos: monotonicNanos()) == 3)
        #expect(buffer.drain(into: &batch, max: 3, deadlineNanos: monotonicNanos()) == 2)
        #expect(batch.map(\.topic) == (0..<5).map { "t/\($0)" })
    }

    @Test func drainTimesOutWhenEmpty() {
        let buffer = InboundBuffer(capacity: 4)
        var batch: [InboundMessage] = []
        let started = monotonicNanos()
        #expect(buffer.drain(into: &batch, max: 10, deadlineNanos: started + 50_000_000) == 0)
        #expect(monotonicNanos() - started >= 45_000_000)
    }

    /// A full buffer blocks the producer (the network thread) until the consumer makes room:
    /// back-pressure, never a dropped message.
    @Test func fullBufferBlocksTheProducerUntilThereIsRoom() throws {
        let buffer = InboundBuffer(capacity: 4)
        let pushed = Atomic<Int>(0)
        let producer = Thread {
            for index in 0..<100 {
                buffer.push(message(index))
                pushed.add(1, ordering: .relaxed)
            }
        }
        producer.start()
        usleep(100_000)
        let pushedBeforeDraining = pushed.load(ordering: .relaxed)
        #expect(pushedBeforeDraining == 4)
        #expect(buffer.statistics.blockedPushes >= 1)
        var received: [InboundMessage] = []
        let deadline = Date().addingTimeInterval(10)
        while received.count < 100 && Date() < deadline {
            _ = buffer.drain(into: &received, max: 7, deadlineNanos: monotonicNanos() + 10_000_000)
        }
        #expect(received.map(\.topic) == (0..<100).map { "t/\($0)" })
        #expect(buffer.statistics.highWater == 4)
    }

    @Test func closeRefusesNewMessagesButKeepsQueuedOnes() {
        let buffer = InboundBuffer(capacity: 4)
        buffer.push(message(1))
        buffer.close()
        #expect(!buffer.push(message(2)))
        #expect(!buffer.isClosedAndEmpty)
        var batch: [InboundMessage] = []
        #expect(buffer.drain(into: &batch, max: 10, deadlineNanos: monotonicNanos() + 1_000_000_000) == 1)
        #expect(buffer.isClosedAndEmpty)
        // A closed, empty buffer returns at once rather than waiting out the deadline.
        let started = monotonicNanos()
        #expect(buffer.drain(into: &batch, max: 10, deadlineNanos: started + 5_000_000_000) == 0)
        #expect(monotonicNanos() - started < 1_000_000_000)
    }

    @Test func closeWakesABlockedProducer() {
        let buffer = InboundBuffer(capacity: 1)
        buffer.push(message(0))
        let finished = Atomic<Bool>(false)
        let result = Atomic<Bool>(true)
        Thread {
            result.store(buffer.push(message(1)), ordering: .relaxed)
            finished.store(true, ordering: .relaxed)
        }.start()
        usleep(50_000)
        let finishedEarly = finished.load(ordering: .relaxed)
        #expect(!finishedEarly)
        buffer.close()
        let deadline = Date().addingTimeInterval(5)
        while !finished.load(ordering: .relaxed) && Date() < deadline { usleep(1_000) }
        let finishedLate = finished.load(ordering: .relaxed)
        let accepted = result.load(ordering: .relaxed)
        #expect(finishedLate)
        #expect(!accepted)
    }
}

@Suite struct BackoffTests {
    @Test func doublesUpToTheCap() {
        var backoff = MQTTClient.Backoff(initialMs: 250, maxMs: 30_000, jitter: 0)
        let delays = (0..<10).map { _ in backoff.next(random: 0.5) }
        #expect(delays == [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000])
        backoff.reset()
        #expect(backoff.next(random: 0.5) == 250)
    }

    @Test func jitterSpreadsAroundTheBaseWithinTheCap() {
        var low = MQTTClient.Backoff(initialMs: 1_000, maxMs: 30_000, jitter: 0.2)
        var high = MQTTClient.Backoff(initialMs: 1_000, maxMs: 30_000, jitter: 0.2)
        #expect(low.next(random: 0) == 800)
        #expect(high.next(random: 0.999_999) == 1_199)
        var capped = MQTTClient.Backoff(initialMs: 1_000, maxMs: 2_000, jitter: 0.5)
        for _ in 0..<20 { #expect(capped.next(random: 0.99) <= 2_000) }
    }

    @Test func neverOverflowsAfterManyAttempts() {
        var backoff = MQTTClient.Backoff(initialMs: 1, maxMs: 60_000, jitter: 0.1)
        for _ in 0..<10_000 { #expect((1...60_000).contains(backoff.next())) }
    }
}
