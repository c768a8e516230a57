import Foundation
import RingStore

/// `stats` and `watch`: read a store file directly, for use on the box without a token.
enum Offline {
    static func open(_ path: String) -> StoreReader {
        guard FileManager.default.fileExists(atPath: path) else {
            fail("no store at \(path): pass --db PATH (the store.path of gatewayd's config)")
        }
        do {
            return try StoreReader(path: path)
        } catch {
            fail("\(error)")
        }
    }

    static func stats(path: String) {
        let summary: StoreReader.Summary
        do { summary = try open(path).summary() } catch { fail("\(error)") }
        if wantsJSON {
            let object: [String: Any] = [
                "readings": summary.readingsByKind, "devices": summary.devicesByKind,
                "capacity_readings": summary.capacityReadings, "readings_evicted": summary.readingsEvicted,
                "readings_dropped_for_space": summary.readingsDroppedForSpace, "rejects_total": summary.rejectsTotal,
                "events": summary.events, "rejects": summary.rejectsByReason, "seq_gaps": summary.seqGaps,
                "duplicates": summary.duplicates, "file_bytes": summary.fileBytes, "aggregates": summary.aggregates,
                "alerts_active": summary.alertsActive, "outbox_messages": summary.outboxMessages,
            ]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let fill = summary.capacityReadings > 0 ? 100 * Double(summary.readings) / Double(summary.capacityReadings) : 0
        print("store        \(path) (\(summary.fileBytes / 1024) KiB)")
        print(
            "readings     \(summary.readings) of \(summary.capacityReadings) (\(String(format: "%.1f", fill))%), "
                + "\(summary.readingsEvicted) overwritten, \(summary.readingsDroppedForSpace) dropped for disk space")
        let kinds = summary.readingsByKind.sorted { $0.key < $1.key }.map { ["  " + $0.key, String($0.value)] }
        if !kinds.isEmpty { print(table(["  KIND", "HELD"], kinds)) }
        print(
            "devices      "
                + summary.devicesByKind.sorted(by: { $0.key < $1.key }).map { "\($0.value) \($0.key)" }.joined(
                    separator: ", "))
        print("loss         \(summary.seqGaps) missing (seq gaps), \(summary.duplicates) duplicates dropped")
        print("events       \(summary.events) trouble codes")
        print("aggregates   \(summary.aggregates) windows stored, \(summary.alertsActive) alerts active")
        print("outbox       \(summary.outboxMessages) messages waiting for upstream")
        let held = summary.rejectsByReason.values.reduce(0, +)
        print(
            "rejects      \(summary.rejectsTotal) since the store was created"
                + (held < summary.rejectsTotal ? "; the newest \(held) held, by reason:" : ", by reason:"))
        let reasons = summary.rejectsByReason.sorted { $0.value > $1.value }.map { ["  " + $0.key, String($0.value)] }
        if !reasons.isEmpty { print(table(["  REASON", "HELD"], reasons)) }
    }

    static func watch(path: String, interval: Double) -> Never {
        let reader = open(path)
        var previous: StoreReader.Summary?
        var previousTime = Date()
        signal(SIGINT) { _ in exit(0) }
        while true {
            let summary: StoreReader.Summary
            do { summary = try reader.summary() } catch { fail("\(error)") }
            let now = Date()
            // Rate from the total written (held + overwritten), so it stays right once the ring is full.
            let written = summary.readings + summary.readingsEvicted
            let rate =
                previous.map {
                    Double(written - ($0.readings + $0.readingsEvicted)) / now.timeIntervalSince(previousTime)
                } ?? 0
            let kinds = summary.readingsByKind.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }
            let time = ISO8601DateFormatter().string(from: now)
            print(
                "\(time) readings \(kinds.joined(separator: " ")) rate=\(Int(rate))/s devices=\(summary.devicesByKind.values.reduce(0, +)) "
                    + "gaps=\(summary.seqGaps) dups=\(summary.duplicates) rejects=\(summary.rejectsByReason.values.reduce(0, +)) "
                    + "windows=\(summary.aggregates) alerts=\(summary.alertsActive) outbox=\(summary.outboxMessages)"
            )
            fflush(nil)
            previous = summary
            previousTime = now
            Thread.sleep(forTimeInterval: interval)
        }
    }
}
