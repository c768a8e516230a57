import Crypto
import Metrics
import RingStore
import Testing

@testable import API

@Suite struct APIUnitTests {
    static let instants: [(String, Int64?)] = [
        ("1767225600000", 1_767_225_600_000),
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),
        ("2026-01-01T00:00:00.25Z", 1_767_225_600_250),
        ("2026-01-01T01:30:00+01:30", 1_767_225_600_000),
        ("2025-12-31T22:00:00-02:00", 1_767_225_600_000),
        ("now", 5_000_000),
        ("now-1h", 5_000_000 - 3_600_000),
        ("2026-13-01T00:00:00Z", nil),
        ("2026-01-01 00:00:00", nil),
        ("yesterday", nil),
        ("-5", nil),
    ]

    @Test(arguments: instants)
    func parsesInstants(_ text: String, _ expected: Int64?) {
        #expect(TimeParsing.instant(text, nowMs: 5_000_000) == expected)
    }

    @Test func parsesDurations() {
        #expect(TimeParsing.durationMs("60") == 60_000)
        #expect(TimeParsing.durationMs("500ms") == 500)
        #expect(TimeParsing.durationMs("5m") == 300_000)
        #expect(TimeParsing.durationMs("1d") == 86_400_000)
        #expect(TimeParsing.durationMs("m") == nil)
        #expect(TimeParsing.durationMs("-5s") == nil)
        #expect(TimeParsing.durationMs("99999999999999999d") == nil)
    }

    @Test func tokensAreCheckedByHashAndRole() throws {
        let viewer = try TokenAuthority.newToken()
        let op = try TokenAuthority.newToken()
        let authority = TokenAuthority(tokens: [
            APIToken(name: "grafana", role: .viewer, sha256: Hex.decode(viewer.sha256)!),
            APIToken(name: "ops", role: .operator, sha256: Hex.decode(op.sha256)!),
        ])
        #expect(
            authority.authenticate(authorization: "Bearer \(viewer.token)")
                == .authenticated(name: "grafana", role: .viewer))
        #expect(
            authority.authenticate(authorization: "bearer \(op.token)") == .authenticated(name: "ops", role: .operator))
        #expect(authority.authenticate(authorization: nil) == .missing)
        if case .invalid = authority.authenticate(authorization: "Bearer \(viewer.token)x") {
        } else {
            Issue.record("accepted")
        }
        if case .invalid = authority.authenticate(authorization: "Basic \(viewer.token)") {
        } else {
            Issue.record("accepted")
        }
        if case .invalid = authority.authenticate(authorization: "Bearer \(viewer.sha256)") {
        } else {
            Issue.record("the hash itself must not work as a token")
        }
        #expect(Role.viewer < Role.operator)
    }

    @Test func headroomFollowsTheRates() {
        var live = LiveStatus()
        live.readingsPerSecond = 100
        var settings = APIConfiguration()
        settings.aggregationWindowMs = 60_000
        settings.aggregationLatenessMs = 2_000
        var fill = StoreReader.Fill()
        fill.capacityReadings = 1_000_000
        fill.readings = 640_000
        var headroom = Headroom(live: live, fill: fill, configuration: settings)
        #expect(headroom.ringFullS == 3_600)
        #expect(headroom.rawRetentionS == 10_000)
        #expect(headroom.unaggregatedOverwriteS == nil, "the ring keeps readings far longer than a window")
        fill.capacityReadings = 5_000
        fill.readings = 5_000
        headroom = Headroom(live: live, fill: fill, configuration: settings)
        #expect(headroom.unaggregatedOverwriteS == 0, "50 s of readings is less than a 62 s aggregation delay")
        live.upstreamConfigured = true
        settings.outboxLimitBytes = 1_000_000
        live.outboxBacklogBytes = 640_000
        live.outboxBytesPerSecond = 100
        #expect(Headroom(live: live, fill: fill, configuration: settings).outboxFullS == 3_600)
        live.outboxBytesPerSecond = -5
        #expect(Headroom(live: live, fill: fill, configuration: settings).outboxFullS == nil)
    }

    @Test func prometheusTextEscapesAndAccumulates() {
        var text = PrometheusText()
        text.family("x_total", type: "counter", help: "a \\ b\nc")
        text.sample("x_total", [("reason", "bad\"quote\\\n")], Int64(3))
        let histogram = Histogram(bounds: [1, 5])
        histogram.observe(0.5)
        histogram.observe(3)
        histogram.observe(9)
        text.histogram("h", [("route", "/v1")], histogram.snapshot)
        #expect(text.text.contains("# HELP x_total a \\\\ b\\nc\n"))
        #expect(text.text.contains("x_total{reason=\"bad\\\"quote\\\\\\n\"} 3\n"))
        #expect(text.text.contains("h_bucket{route=\"/v1\",le=\"1\"} 1\n"))
        #expect(text.text.contains("h_bucket{route=\"/v1\",le=\"5\"} 2\n"))
        #expect(text.text.contains("h_bucket{route=\"/v1\",le=\"+Inf\"} 3\n"))
        #expect(text.text.contains("h_sum{route=\"/v1\"} 12.5\n"))
        #expect(text.text.contains("h_count{route=\"/v1\"} 3\n"))
    }
}

@Suite struct SeriesCacheTests {
    let key = SeriesCache.Key(device: 1, signal: 30, fromMs: 0, toMs: 60_000, stepMs: 60_000)

    func entry(_ text: String, at nanos: UInt64) -> SeriesCache.Entry {
        SeriesCache.Entry(body: Array(text.utf8), source: "raw", storedNanos: nanos)
    }

    @Test func freshEntriesHitAndExpiredOnesAreRecomputedByOneCaller() {
        let cache = SeriesCache(ttlMs: 1_000)
        #expect(cache.lookup(key, nowNanos: 0) == nil)
        cache.store(key, entry("a", at: 0))
        #expect(cache.lookup(key, nowNanos: 999_000_000)?.body == Array("a".utf8))
        // Expired: the first caller gets nil and recomputes; the next ones get the old body.
        #expect(cache.lookup(key, nowNanos: 1_500_000_000) == nil)
        #expect(cache.lookup(key, nowNanos: 1_600_000_000)?.body == Array("a".utf8))
        // If the recomputation never lands, the old body stops being served after 5 × ttl.
        #expect(cache.lookup(key, nowNanos: 5_100_000_000) == nil)
        cache.store(key, entry("b", at: 5_200_000_000))
        #expect(cache.lookup(key, nowNanos: 5_300_000_000)?.body == Array("b".utf8))
        #expect(cache.stats.hits == 3)
        #expect(cache.stats.misses == 3)
    }

    @Test func disabledAndBoundedCaches() {
        let off = SeriesCache(ttlMs: 0)
        off.store(key, entry("a", at: 0))
        #expect(off.lookup(key, nowNanos: 1) == nil)
        let small = SeriesCache(ttlMs: 1_000, maxEntries: 2)
        for index in 0..<5 {
            var other = key
            other.device = Int64(index)
            small.store(other, entry("\(index)", at: UInt64(index)))
        }
        var last = key
        last.device = 4
        #expect(small.lookup(last, nowNanos: 10)?.body == Array("4".utf8))
        var first = key
        first.device = 0
        #expect(small.lookup(first, nowNanos: 10) == nil, "the oldest went first")
    }
}
