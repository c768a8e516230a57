import Alerts
import HTTP
import Metrics
import RingStore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// `/metrics`: the gateway's counters, the store's fill, the API's own traffic and the
/// process's memory and descriptors, in Prometheus text format 0.0.4.
extension APIService {
    func metrics() throws(APIError) -> HTTPResponse {
        let live = status()
        let fill = try withStore { try $0.fill() }
        var out = PrometheusText()

        out.family(
            "gateway_readings_ingested_total", type: "counter", help: "Readings stored since start, by device kind.")
        for kind in ["vehicle", "water"] {
            out.sample("gateway_readings_ingested_total", [("kind", kind)], live.ingest.readings(kind: kind))
        }
        out.counter(
            "gateway_messages_received_total", help: "MQTT messages taken off the broker.", live.ingest.messagesReceived
        )
        out.family("gateway_rejects_total", type: "counter", help: "Messages rejected since start, by reason.")
        for (reason, count) in live.ingest.rejects.sorted(by: { $0.key < $1.key }) {
            out.sample("gateway_rejects_total", [("reason", reason)], count)
        }
        out.counter(
            "gateway_duplicates_total", help: "Messages dropped as duplicates (same device and seq).",
            live.ingest.duplicates)
        out.counter(
            "gateway_seq_gaps_total", help: "Sequence numbers never received (not filled by late messages).",
            live.ingest.seqGapsOpened)
        out.counter("gateway_seq_resets_total", help: "Device counter restarts (reboots).", live.ingest.seqResets)
        out.gauge("gateway_ring_readings", help: "Readings held in the ring store.", Double(fill.readings))
        out.gauge(
            "gateway_ring_capacity_readings", help: "Capacity of the reading ring.", Double(fill.capacityReadings))
        out.gauge(
            "gateway_ring_fill_ratio", help: "Readings held over capacity.",
            fill.capacityReadings > 0 ? Double(fill.readings) / Double(fill.capacityReadings) : 0)
        out.counter(
            "gateway_ring_evictions_total", help: "Readings overwritten by newer ones (ring wrapped), ever.",
            fill.readingsEvicted)
        out.gauge("gateway_store_file_bytes", help: "Size of the store file.", Double(fill.fileBytes))
        out.gauge("gateway_devices", help: "Devices known to the store.", Double(fill.devices))
        out.gauge("gateway_alerts_active", help: "Alerts raised and not cleared.", Double(fill.alertsActive))
        out.counter("gateway_commits_total", help: "Store transactions committed.", live.ingest.commits)
        out.counter(
            "gateway_commit_failures_total", help: "Store transactions that failed (and were retried).",
            live.ingest.commitFailures)
        out.counter(
            "gateway_store_full_total",
            help: "Commits that found the disk or store.max_file_bytes full (the oldest readings made room).",
            live.ingest.storeFullEvents)
        out.counter(
            "gateway_store_reclaimed_readings_total",
            help: "Readings dropped, oldest first, to make room on a full disk.",
            live.ingest.readingsReclaimed)
        out.gauge(
            "gateway_uncommitted_messages",
            help: "Messages acknowledged to the broker and not yet committed: what a kill -9 would lose now.",
            Double(live.ingest.uncommittedMessages))
        if let histogram = live.flushBatchReadings {
            out.family("gateway_flush_batch_readings", type: "histogram", help: "Readings per store commit.")
            out.histogram("gateway_flush_batch_readings", [], histogram)
        }
        if let histogram = live.flushSeconds {
            out.family("gateway_flush_duration_seconds", type: "histogram", help: "Time to commit one batch.")
            out.histogram("gateway_flush_duration_seconds", [], histogram)
        }
        out.counter(
            "gateway_aggregates_written_total", help: "Closed aggregate windows stored or revised.",
            live.ingest.aggregatesWritten)
        out.family(
            "gateway_forecast_seconds_to_alarm", type: "gauge",
            help: "Seconds until a rising gauge's trend reaches its alarm level (rising gauges only).")
        for (sensor, forecast) in (forecasts?.all ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard forecast.status == .rising, let minutes = forecast.minutesToAlarm else { continue }
            out.sample("gateway_forecast_seconds_to_alarm", [("sensor", sensor)], (minutes * 60).rounded())
        }
        out.family(
            "gateway_advisories_total", type: "counter",
            help: "Flooded-road advisories sent to vehicles, by state (warning, alarm, cleared).")
        for state in ["warning", "alarm", "cleared"] {
            out.sample("gateway_advisories_total", [("state", state)], live.ingest.advisories[state] ?? 0)
        }
        out.gauge(
            "gateway_broker_connected", help: "1 when connected to the local MQTT broker.", live.brokerConnected ? 1 : 0
        )
        out.gauge(
            "gateway_upstream_connected", help: "1 when connected upstream (0 also when no upstream is configured).",
            live.upstreamConnected ? 1 : 0)
        out.family(
            "gateway_upstream_node", type: "gauge",
            help: "1 for the city broker node the upstream link is on (connected) or trying next.")
        if let node = live.upstreamNode {
            out.sample("gateway_upstream_node", [("node", node)], live.upstreamConnected ? Int64(1) : 0)
        }
        out.counter(
            "gateway_upstream_failovers_total",
            help: "Moves to another city broker node after a lost or refused connection.", live.upstreamFailovers)
        out.gauge(
            "gateway_upstream_backlog_messages", help: "Messages waiting in the outbox.",
            Double(live.outboxBacklogMessages))
        out.gauge(
            "gateway_upstream_backlog_bytes", help: "Bytes waiting in the outbox.", Double(live.outboxBacklogBytes))
        out.gauge(
            "gateway_upstream_oldest_unsent_age_seconds",
            help: "Age of the oldest message in the outbox (0 when empty).",
            fill.outboxOldestMs.map { Double(max(0, TimeParsing.nowMs() - $0)) / 1000 } ?? 0)
        out.gauge(
            "gateway_positions_oldest_age_seconds",
            help: "Age (by its own time) of the oldest vehicle position held; 0 when none is held.",
            fill.positionsOldestMs.map { Double(max(0, TimeParsing.nowMs() - $0)) / 1000 } ?? 0)
        out.counter(
            "gateway_positions_erased_total", help: "Vehicle position rows erased by the retention sweep.",
            live.ingest.positionsErased)
        out.counter(
            "gateway_vehicles_forgotten_total",
            help: "Vehicles erased on request (POST /v1/devices/{id}/forget) since start.", live.ingest.erasures)
        out.counter(
            "gateway_upstream_dropped_total", help: "Outbox messages dropped because the backlog cap was reached.",
            live.ingest.outboxDropped)
        out.family(
            "gateway_certificate_expiry_seconds", type: "gauge",
            help: "Seconds until a certificate this gateway presents expires (negative: expired); none without TLS.")
        for (name, seconds) in live.certificateExpiry.sorted(by: { $0.key < $1.key }) {
            out.sample("gateway_certificate_expiry_seconds", [("cert", name)], seconds)
        }

        out.family("gateway_http_requests_total", type: "counter", help: "HTTP requests by route, method and status.")
        for (labels, count) in requests.snapshot.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            out.sample(
                "gateway_http_requests_total", [("route", labels[0]), ("method", labels[1]), ("status", labels[2])],
                count)
        }
        out.family("gateway_http_request_duration_seconds", type: "histogram", help: "HTTP request latency by route.")
        for (labels, histogram) in latency.snapshot.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            out.histogram("gateway_http_request_duration_seconds", [("route", labels[0])], histogram)
        }

        if let connections = server.stats {
            out.gauge(
                "gateway_http_connections_open", help: "HTTP connections open now.", Double(connections.connectionsOpen)
            )
            out.counter(
                "gateway_http_connections_accepted_total", help: "HTTP connections accepted.",
                connections.connectionsAccepted)
            out.counter(
                "gateway_http_connections_refused_total",
                help: "HTTP connections refused with 503 (http.max_connections).",
                connections.connectionsRefused)
            out.counter(
                "gateway_http_timeouts_total", help: "HTTP connections closed for a header, idle or I/O timeout.",
                connections.timeouts)
        }
        let cache = seriesCache.stats
        out.family(
            "gateway_http_series_cache_total", type: "counter",
            help: "Series requests answered from the short-lived cache (hit) or computed (miss).")
        out.sample("gateway_http_series_cache_total", [("result", "hit")], cache.hits)
        out.sample("gateway_http_series_cache_total", [("result", "miss")], cache.misses)

        out.family(
            "gateway_build_info", type: "gauge", help: "Always 1; the labels say which gatewayd this is.")
        out.sample("gateway_build_info", [("version", live.version), ("gateway_id", live.gatewayID)], Int64(1))
        let process = ProcessStats.read()
        out.counter(
            "process_cpu_seconds_total", help: "User and system CPU time spent in seconds.", process.cpuSeconds)
        out.gauge(
            "process_virtual_memory_bytes", help: "Virtual memory size in bytes.", Double(process.virtualBytes))
        out.gauge(
            "process_resident_memory_bytes", help: "Resident memory size in bytes.", Double(process.residentBytes))
        out.gauge("process_open_fds", help: "Open file descriptors.", Double(process.openFDs))
        out.gauge("process_max_fds", help: "Limit on open file descriptors.", Double(process.maxFDs))
        out.gauge("process_start_time_seconds", help: "Start time since the epoch.", Double(live.startedMs) / 1000)
        otaMetrics(&out)

        var headers = HTTPHeaders()
        headers.add("Content-Type", PrometheusText.contentType)
        return HTTPResponse(status: .ok, headers: headers, body: Array(out.text.utf8))
    }
}

/// Memory and descriptors of this process, from /proc.
struct ProcessStats {
    var residentBytes: Int64 = 0
    var virtualBytes: Int64 = 0
    var cpuSeconds: Double = 0
    var openFDs: Int64 = 0
    var maxFDs: Int64 = 0

    static func read() -> ProcessStats {
        var stats = ProcessStats()
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ")
            let page = Int64(sysconf(Int32(_SC_PAGESIZE)))
            if fields.count > 1, let size = Int64(fields[0]), let pages = Int64(fields[1]) {
                stats.virtualBytes = size * page
                stats.residentBytes = pages * page
            }
        }
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            stats.cpuSeconds =
                Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
                + Double(usage.ru_stime.tv_usec) / 1e6
        }
        if let directory = opendir("/proc/self/fd") {
            while let entry = readdir(directory) {
                if entry.pointee.d_name.0 != 46 { stats.openFDs += 1 }
            }
            closedir(directory)
            stats.openFDs -= 1
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { stats.maxFDs = Int64(limit.rlim_cur) }
        return stats
    }
}
