public import Advisories
public import Alerts
public import Campaigns
import Geo
import HTTP
public import JSON
public import Logging
public import Metrics
public import RingStore
import Synchronization
public import Telemetry

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The REST API: the route table, the store readers, and the gateway's live status.
public final class APIService: Sendable {
    public let configuration: APIConfiguration
    let pool: StorePool
    let status: @Sendable () -> LiveStatus
    /// The running configuration without token hashes, for `/v1/config`.
    let configurationDocument: JSONValue
    let logger: Logger
    let authority: TokenAuthority
    /// HTTP requests by route, method and status; latency by route.
    public let requests = LabeledCounter()
    public let latency = LabeledHistogram(bounds: Histogram.latencyBounds)
    let routes: [Route]
    let logLimiter = LogLimiter(perSecond: 20)
    /// The server this service answers for (set once by `APIServer`), for connection metrics.
    let server = WeakServer()
    let seriesCache: SeriesCache
    /// The newest value of each series, kept by the store's writer in this process.
    let latestValues: LatestValues
    /// Aggregation windows not yet stored, kept by the writer: the newest minutes of a series.
    let openWindows: OpenWindows?
    /// Hands a gauge site to the ingest thread; true once it is stored and in effect.
    let setSensorSite: (@Sendable (GaugeSite) -> Bool)?
    /// Hands a vehicle to forget, and the name of the token asking, to the ingest thread; nil
    /// when it did not answer in time.
    let forgetVehicle: (@Sendable (VIN, String) -> Result<ErasureReport, StoreError>?)?
    /// Each gauge's trend forecast, kept by the ingest thread.
    let forecasts: ForecastBoard?
    /// OTA distribution; nil when `ota.enabled` is false.
    let ota: OTAService?

    public init(
        configuration: APIConfiguration, storePath: String, latest: LatestValues, openWindows: OpenWindows?,
        setSensorSite: (@Sendable (GaugeSite) -> Bool)? = nil,
        forgetVehicle: (@Sendable (VIN, String) -> Result<ErasureReport, StoreError>?)? = nil,
        forecasts: ForecastBoard? = nil, ota: OTAService? = nil,
        logger: Logger,
        status: @escaping @Sendable () -> LiveStatus, configurationDocument: JSONValue
    ) {
        self.configuration = configuration
        self.pool = StorePool(path: storePath, capacity: configuration.storeReaders)
        self.status = status
        self.configurationDocument = configurationDocument
        self.logger = logger.with("component", "api")
        self.authority = TokenAuthority(tokens: configuration.tokens)
        self.routes = APIService.routeTable
        self.seriesCache = SeriesCache(ttlMs: configuration.seriesCacheMs)
        self.latestValues = latest
        self.openWindows = openWindows
        self.setSensorSite = setSensorSite
        self.forgetVehicle = forgetVehicle
        self.forecasts = forecasts
        self.ota = ota
    }

    /// Runs a store query, turning store failures into a 503 that says what failed.
    func withStore<T>(_ body: (StoreReader) throws -> T) throws(APIError) -> T {
        do {
            return try pool.withReader(body)
        } catch let error as APIError {
            throw error
        } catch {
            logger.error("api_store_failed", [("error", "\(error)")])
            throw APIError(.serviceUnavailable, "store_unavailable", "the store could not be read: \(error)")
        }
    }

    /// The route table. Order matters only for documentation.
    static let routeTable: [Route] = coreRoutes + otaRoutes

    static let coreRoutes: [Route] = [
        Route(
            method: "GET", pattern: ["v1", "health"], access: .health,
            summary: "Liveness, connections, store fill, outbox backlog and headroom",
            responseSchema: Schemas.health, handler: { service, _, _ throws(APIError) in try service.health() }),
        Route(
            method: "GET", pattern: ["v1", "devices"], access: .viewer,
            summary: "Devices, a page at a time in (kind, id) order",
            query: [
                QueryParameter(
                    name: "kind", description: "vehicle or water",
                    schema: .object(
                        JSONObject([
                            ("type", .string("string")), ("enum", .array([.string("vehicle"), .string("water")])),
                        ]))),
                QueryParameter(
                    name: "limit", description: "1 to 1000, default 100", schema: Schemas.limit(default: 100)),
                QueryParameter(name: "cursor", description: "next_cursor of the previous page", schema: Schemas.string),
            ],
            responseSchema: Schemas.devicePage,
            handler: { service, request, _ throws(APIError) in try service.devices(request) }),
        Route(
            method: "GET", pattern: ["v1", "devices", "{id}"], access: .viewer,
            summary: "One device with the latest value of each signal",
            query: [
                QueryParameter(
                    name: "kind", description: "needed only when a vehicle and a sensor share the id",
                    schema: Schemas.enumeration(["vehicle", "water"]))
            ],
            responseSchema: Schemas.deviceDetail,
            positionsScope: "without it, `latest` leaves out lat_deg, lon_deg, gps_speed_kmh and heading_deg",
            handler: { service, request, parameters throws(APIError) in
                try service.device(request, id: parameters["id"] ?? "")
            }),
        Route(
            method: "POST", pattern: ["v1", "devices", "{id}", "forget"], access: .operator,
            summary:
                "Erase everything the gateway holds about a vehicle (data protection), and tell the city side",
            responseSchema: Schemas.erasure,
            failures: [
                ("400", "The id is not a VIN"),
                ("503", "The erasure did not finish in time or failed; see gatewayd's log and retry"),
            ],
            handler: { service, request, parameters throws(APIError) in
                try service.forget(request, id: parameters["id"] ?? "")
            }),
        Route(
            method: "GET", pattern: ["v1", "series"], access: .viewer,
            summary: "Buckets of count/min/max/mean of one signal of one device",
            query: [
                QueryParameter(name: "device", description: "device id", schema: Schemas.deviceID, required: true),
                QueryParameter(
                    name: "signal", description: "signal name, e.g. level_cm", schema: Schemas.string, required: true),
                QueryParameter(
                    name: "from", description: "unix ms, RFC 3339, now or now-DURATION; default now-24h",
                    schema: Schemas.string),
                QueryParameter(name: "to", description: "as from; default now", schema: Schemas.string),
                QueryParameter(
                    name: "step", description: "seconds or 30s, 5m, 1h, 1d; default 60s", schema: Schemas.string),
                QueryParameter(
                    name: "kind", description: "needed only when a vehicle and a sensor share the id",
                    schema: Schemas.enumeration(["vehicle", "water"])),
            ],
            responseSchema: Schemas.series,
            failures: [
                ("404", "No such device has been heard"),
                ("403", "A position signal asked for by a token without the positions scope"),
            ],
            positionsScope: "required for lat_deg, lon_deg, gps_speed_kmh and heading_deg (403 without it)",
            handler: { service, request, _ throws(APIError) in try service.series(request) }),
        Route(
            method: "GET", pattern: ["v1", "alerts"], access: .viewer,
            summary: "Alerts raised now, or every raise and clear",
            query: [
                QueryParameter(
                    name: "state", description: "active (default) or all",
                    schema: .object(
                        JSONObject([
                            ("type", .string("string")), ("enum", .array([.string("active"), .string("all")])),
                        ]))),
                QueryParameter(name: "since", description: "unix ms or RFC 3339", schema: Schemas.string),
                QueryParameter(
                    name: "limit", description: "1 to 1000, default 100", schema: Schemas.limit(default: 100)),
            ],
            responseSchema: Schemas.alerts,
            handler: { service, request, _ throws(APIError) in try service.alerts(request) }),
        Route(
            method: "GET", pattern: ["v1", "rejects"], access: .viewer,
            summary: "Recent rejected messages with reasons, and counts per reason",
            query: [
                QueryParameter(name: "limit", description: "1 to 1000, default 50", schema: Schemas.limit(default: 50))
            ],
            responseSchema: Schemas.rejects,
            handler: { service, request, _ throws(APIError) in try service.rejects(request) }),
        Route(
            method: "GET", pattern: ["v1", "map"], access: .viewer,
            summary: "GeoJSON of gauges (site, state, level, forecast) and vehicles (newest position)",
            responseType: "application/geo+json", responseSchema: Schemas.featureCollection,
            positionsScope: "without it, the collection has the gauges only, no vehicle",
            handler: { service, request, _ throws(APIError) in try service.map(request) }),
        Route(
            method: "PUT", pattern: ["v1", "sensors", "{id}", "site"], access: .operator,
            summary: "Set where a water gauge is and how much road it covers (for flooded-road advisories)",
            responseSchema: Schemas.site, requestSchema: Schemas.siteInput, maxBodyBytes: 1024,
            handler: { service, request, parameters throws(APIError) in
                try service.putSite(request, id: parameters["id"] ?? "")
            }),
        Route(
            method: "GET", pattern: ["v1", "config"], access: .operator,
            summary: "The running configuration, token hashes left out",
            responseSchema: Schemas.configuration,
            handler: { service, _, _ throws(APIError) in .json(service.configurationDocument) }),
        Route(
            method: "GET", pattern: ["metrics"], access: .metrics,
            summary: "Prometheus metrics (text format 0.0.4)", responseType: "text/plain",
            responseSchema: Schemas.string,
            handler: { service, _, _ throws(APIError) in try service.metrics() }),
        Route(
            method: "GET", pattern: [], access: .public,
            summary: "Sends a browser to the console", responseType: "text/html", responseSchema: Schemas.string,
            successes: [("302", "To /console")],
            handler: { _, _, _ throws(APIError) in
                var headers = HTTPHeaders()
                headers.add("Location", "/console")
                return HTTPResponse(status: .found, headers: headers)
            }),
        Route(
            method: "GET", pattern: ["console"], access: .public,
            summary: "The console: one page for a field technician (it asks for a token and calls this API)",
            responseType: "text/html", responseSchema: Schemas.string,
            handler: { service, _, _ throws(APIError) in try service.consoleFile("index.html") }),
        Route(
            method: "GET", pattern: ["console", "{file}"], access: .public,
            summary: "The console's stylesheet (app.css) and script (app.js)",
            responseType: "text/plain", responseSchema: Schemas.string,
            handler: { service, _, parameters throws(APIError) in try service.consoleFile(parameters["file"] ?? "") }),
        Route(
            method: "GET", pattern: ["v1", "openapi.json"], access: .viewer,
            summary: "This document",
            responseSchema: Schemas.openAPI,
            handler: { service, _, _ throws(APIError) in .json(service.openAPIDocument()) }),
    ]
}

/// At most `perSecond` lines of one kind per second; the rest are counted and reported
/// with the next line, so a flood of bad requests cannot flood the log.
final class LogLimiter: Sendable {
    private let perSecond: Int
    private let state = Mutex<(second: Int64, lines: Int, suppressed: Int)>((0, 0, 0))

    init(perSecond: Int) {
        self.perSecond = perSecond
    }

    /// Nil when this line is to be dropped, else how many were dropped before it.
    func admit(nowSecond: Int64) -> Int? {
        state.withLock { state in
            if state.second != nowSecond {
                state.second = nowSecond
                state.lines = 0
            }
            guard state.lines < perSecond else {
                state.suppressed += 1
                return nil
            }
            state.lines += 1
            defer { state.suppressed = 0 }
            return state.suppressed
        }
    }
}

/// A weak reference to the HTTP server, settable after both exist.
final class WeakServer: @unchecked Sendable {
    private let lock = Mutex(())
    private weak var server: HTTPServer?

    func attach(_ server: HTTPServer) {
        lock.withLock { _ in self.server = server }
    }

    var stats: HTTPServer.Stats? {
        let server = lock.withLock { _ in self.server }
        return server?.stats
    }
}
