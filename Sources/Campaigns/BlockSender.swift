import Dispatch
import Logging
import MQTT
import OTA
import Synchronization
import Telemetry

#if canImport(Glibc)
    import Glibc
#endif

/// One accepted block request, ready to be served.
struct BlockJob: Sendable {
    var vin: VIN
    var topic: String
    var reader: BlobReader
    var file: OfferedFile
    var campaign: UInt32
    var blocks: [UInt32]
}

/// Serves block requests on its own thread: reads each block from disk with `pread` into one
/// reused buffer behind its 16-byte header and publishes it at QoS 0, paced by the token
/// bucket and by how many publishes libmosquitto has not yet written to the socket.
///
/// Why QoS 0 and a bound on unwritten publishes: a lost block is simply requested again by
/// the vehicle, so broker acknowledgements would only add round trips; the bound keeps
/// libmosquitto's send queue (and so gatewayd's memory) flat however many vehicles fetch.
final class BlockSender: @unchecked Sendable {
    private let client: MQTTClient
    private let metrics: OTAMetrics
    private let gate: ServeGate
    private let logger: Logger
    private let maxQueued: Int
    private let maxUnwritten: Int
    private let bytesPerSecond: Int
    private let queue = Mutex<[BlockJob]>([])
    private let wake = DispatchSemaphore(value: 0)
    private let unwritten = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?

    init(
        client: MQTTClient, metrics: OTAMetrics, gate: ServeGate, logger: Logger, maxQueued: Int, maxUnwritten: Int,
        bytesPerSecond: Int
    ) {
        self.client = client
        self.metrics = metrics
        self.gate = gate
        self.logger = logger
        self.maxQueued = maxQueued
        self.maxUnwritten = maxUnwritten
        self.bytesPerSecond = bytesPerSecond
    }

    /// False when the queue is full; the vehicle will ask again.
    ///
    /// Blocks already waiting for the same vehicle and file are not queued twice: a vehicle
    /// asks again after 3 s without an answer, and behind a bandwidth cap the first request
    /// is often still waiting here, so serving both would spend the cap on duplicates.
    func enqueue(_ job: BlockJob) -> Bool {
        var job = job
        let requested = job.blocks.count
        let accepted = queue.withLock { jobs in
            guard jobs.count < maxQueued else { return false }
            for queued in jobs where queued.vin == job.vin && queued.campaign == job.campaign && queued.file.kind == job.file.kind {
                job.blocks.removeAll { queued.blocks.contains($0) }
            }
            if job.blocks.isEmpty { return true }
            jobs.append(job)
            return true
        }
        if job.blocks.count < requested { OTAMetrics.add(metrics.blocksDeduplicated, UInt64(requested - job.blocks.count)) }
        if accepted { wake.signal() } else { OTAMetrics.add(metrics.requestsDropped) }
        return accepted
    }

    var queued: Int { queue.withLock { $0.count } }

    func start(blockSize: Int) {
        let box = Unmanaged.passRetained(BlockSenderStart(sender: self, blockSize: blockSize))
        var created = pthread_t()
        let rc = pthread_create(
            &created, nil,
            { raw in
                let start = Unmanaged<BlockSenderStart>.fromOpaque(raw!).takeRetainedValue()
                start.sender.run(blockSize: start.blockSize)
                return nil
            }, box.toOpaque())
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = created
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func run(blockSize: Int) {
        var bucket = TokenBucket(bytesPerSecond: bytesPerSecond, burstBytes: 2 * (blockSize + DataHeader.length))
        var buffer = [UInt8](repeating: 0, count: DataHeader.length + blockSize)
        while !stopping.load(ordering: .acquiring) {
            let job = queue.withLock { jobs in jobs.isEmpty ? nil : jobs.removeFirst() }
            guard let job else {
                _ = wake.wait(timeout: .now() + .milliseconds(500))
                continue
            }
            serve(job, buffer: &buffer, bucket: &bucket)
        }
    }

    private func serve(_ job: BlockJob, buffer: inout [UInt8], bucket: inout TokenBucket) {
        let count = job.file.blockCount
        for block in job.blocks {
            guard Int(block) < count, job.file.blockSize + DataHeader.length <= buffer.count else {
                OTAMetrics.add(metrics.requestsRefused)
                continue
            }
            let length = job.file.blockLength(Int(block))
            let waited = bucket.take(length + DataHeader.length)
            if waited > 0 { OTAMetrics.add(metrics.throttledNanos, waited) }
            waitForRoom()
            // Paused, canceled, aborted or withdrawn since the request was queued, or during the
            // bandwidth wait just above: stop here, so no block leaves after the operator's call.
            guard gate.allows(vin: job.vin, campaign: job.campaign) else { return }
            let ok = buffer.withUnsafeMutableBytes { raw in
                DataHeader(file: job.file.kind, campaign: job.campaign, block: block, payloadLength: UInt32(length))
                    .write(into: raw)
                return job.reader.read(
                    at: UInt64(block) * UInt64(job.file.blockSize),
                    into: UnsafeMutableRawBufferPointer(rebasing: raw[DataHeader.length..<(DataHeader.length + length)]))
            }
            guard ok else {
                OTAMetrics.add(metrics.readErrors)
                logger.error("ota_block_read_failed", [("blob.sha256", job.file.sha256), ("block", String(block))])
                return
            }
            unwritten.wrappingAdd(1, ordering: .relaxed)
            do {
                try client.publish(topic: job.topic, payload: buffer[0..<(DataHeader.length + length)], qos: 0) {
                    [weak self] _ in
                    self?.unwritten.wrappingSubtract(1, ordering: .relaxed)
                }
                OTAMetrics.add(metrics.blocksServed)
                OTAMetrics.add(metrics.bytesServed, UInt64(length))
            } catch {
                unwritten.wrappingSubtract(1, ordering: .relaxed)
                OTAMetrics.add(metrics.publishErrors)
                return
            }
        }
    }

    /// Waits while too many publishes are unwritten. A connection loss drops libmosquitto's
    /// queue without completions, so after 2 s the count is assumed stale and reset.
    private func waitForRoom() {
        let deadline = monotonicNanos() + 2_000_000_000
        while unwritten.load(ordering: .relaxed) >= maxUnwritten {
            if stopping.load(ordering: .relaxed) { return }
            if monotonicNanos() > deadline {
                unwritten.store(0, ordering: .relaxed)
                return
            }
            usleep(200)
        }
    }
}

private final class BlockSenderStart {
    let sender: BlockSender
    let blockSize: Int
    init(sender: BlockSender, blockSize: Int) {
        self.sender = sender
        self.blockSize = blockSize
    }
}
