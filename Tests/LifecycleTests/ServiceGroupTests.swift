import Lifecycle
import Logging
import Synchronization
import Testing

@Suite struct ServiceGroupTests {
    struct Refused: Error {}

    /// Records what happened to every part, in order.
    final class Journal: Sendable {
        let entries = Mutex<[String]>([])
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    final class Part: Service {
        let serviceName: String
        let journal: Journal
        let refuses: Bool

        init(_ name: String, _ journal: Journal, refuses: Bool = false) {
            serviceName = name
            self.journal = journal
            self.refuses = refuses
        }

        func start() throws {
            if refuses { throw Refused() }
            journal.add("start \(serviceName)")
        }

        func stop() { journal.add("stop \(serviceName)") }
    }

    @Test func startsInOrderAndStopsInReverse() throws {
        let journal = Journal()
        let group = ServiceGroup(
            [Part("upstream", journal), Part("ingest", journal), Part("mqtt", journal)],
            logger: Logger(level: .critical))
        try group.start()
        group.stop()
        #expect(
            journal.all == [
                "start upstream", "start ingest", "start mqtt", "stop mqtt", "stop ingest", "stop upstream",
            ])
    }

    @Test func aPartThatCannotStartStopsTheOnesBeforeIt() {
        let journal = Journal()
        let group = ServiceGroup(
            [
                Part("upstream", journal), Part("ingest", journal), Part("http", journal, refuses: true),
                Part("late", journal),
            ],
            logger: Logger(level: .critical))
        #expect(throws: Refused.self) { try group.start() }
        #expect(journal.all == ["start upstream", "start ingest", "stop ingest", "stop upstream"])
        // The shutdown that follows a failed start stops nothing twice (a second stop of the
        // ingest thread waited forever: the board test caught gatewayd hanging until systemd's
        // start timeout).
        group.stop()
        #expect(journal.all.count == 4)
    }

    @Test func stoppingTwiceStopsOnce() throws {
        let journal = Journal()
        let group = ServiceGroup([Part("a", journal), Part("b", journal)], logger: Logger(level: .critical))
        try group.start()
        group.stop()
        group.stop()
        #expect(journal.all == ["start a", "start b", "stop b", "stop a"])
    }
}
