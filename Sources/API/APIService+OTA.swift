import Campaigns
import HTTP
import JSON
import Metrics

/// The OTA routes: resumable blob uploads, signed manifests, campaigns and their controls.
extension APIService {
    static let otaRoutes: [Route] =
        [
            Route(
                method: "GET", pattern: ["v1", "ota", "blobs", "{sha256}"], access: .operator,
                summary:
                    "How much of a blob (image or delta, named by its SHA-256) the gateway holds; resume an upload from received",
                responseSchema: Schemas.blobStatus,
                handler: { service, _, parameters throws(APIError) in
                    .json(
                        try service.withOTA { ota throws(OTARequestError) in
                            try ota.blobStatus(parameters["sha256"] ?? "")
                        })
                }),
            Route(
                method: "PUT", pattern: ["v1", "ota", "blobs", "{sha256}"], access: .operator,
                summary:
                    "Upload a chunk of a blob at offset (append-only, resumable); the last chunk is checked against the SHA-256",
                query: [
                    QueryParameter(
                        name: "offset", description: "where this chunk starts: the blob's received count",
                        schema: Schemas.integer, required: true),
                    QueryParameter(
                        name: "length", description: "the whole blob's length in bytes", schema: Schemas.integer,
                        required: true),
                ],
                responseSchema: Schemas.blobStatus, requestSchema: Schemas.binary,
                requestType: "application/octet-stream",
                maxBodyBytes: 8 * 1024 * 1024,
                failures: [
                    ("409", "The offset is not the blob's received count, or the length differs from the upload's"),
                    ("422", "The finished blob's SHA-256 is not its name"),
                    ("507", "No room for the blob (ota.max_blob_bytes or the disk)"),
                ],
                handler: { service, request, parameters throws(APIError) in try service.putBlob(request, parameters) }),
            Route(
                method: "POST", pattern: ["v1", "ota", "manifests"], access: .operator,
                summary:
                    "Store a signed release manifest after checking signatures, expiry, anti-rollback and its blobs",
                responseSchema: Schemas.manifest, requestSchema: Schemas.signedManifest, maxBodyBytes: 4 * 1024 * 1024,
                successes: [("200", "Already stored"), ("201", "Stored")],
                failures: [
                    ("422", "Refused: signatures, expiry, anti-rollback or a missing blob; the code says which")
                ],
                handler: { service, request, _ throws(APIError) in
                    let (body, created) = try service.withOTA { ota throws(OTARequestError) in
                        try ota.submitManifest(request.body)
                    }
                    return .json(body, status: created ? .created : .ok)
                }),
            Route(
                method: "GET", pattern: ["v1", "ota", "manifests"], access: .viewer,
                summary: "Stored manifests, newest first", responseSchema: Schemas.manifestList,
                handler: { service, _, _ throws(APIError) in
                    .json(try service.withOTA { ota throws(OTARequestError) in try ota.manifests() })
                }),
            Route(
                method: "POST", pattern: ["v1", "ota", "campaigns"], access: .operator,
                summary: "Start a campaign for a stored manifest: waves, thresholds, timeouts, install window",
                responseSchema: Schemas.campaign, requestSchema: Schemas.campaignInput, maxBodyBytes: 4096,
                successes: [("201", "Created; the first offers are out")],
                failures: [("422", "The manifest expired, or the settings are out of range")],
                handler: { service, request, _ throws(APIError) in
                    let body: JSONValue
                    do { body = try JSONParser.parse(request.body) } catch {
                        throw APIError(.badRequest, "invalid_body", "the body is not JSON: \(error)")
                    }
                    return .json(
                        try service.withOTA { ota throws(OTARequestError) in try ota.createCampaign(body) },
                        status: .created)
                }),
            Route(
                method: "GET", pattern: ["v1", "ota", "campaigns"], access: .viewer,
                summary: "Campaigns, newest first, with vehicle counts by state", responseSchema: Schemas.campaignList,
                handler: { service, _, _ throws(APIError) in
                    .json(try service.withOTA { ota throws(OTARequestError) in try ota.campaigns() })
                }),
            Route(
                method: "GET", pattern: ["v1", "ota", "campaigns", "{id}"], access: .viewer,
                summary: "One campaign with every vehicle's state, progress and reason",
                responseSchema: Schemas.campaignDetail,
                handler: { service, _, parameters throws(APIError) in
                    let id = try campaignID(parameters)
                    return .json(try service.withOTA { ota throws(OTARequestError) in try ota.campaign(id) })
                }),
        ]
        + ["pause", "resume", "cancel"].map { verb in
            Route(
                method: "POST", pattern: ["v1", "ota", "campaigns", "{id}", verb], access: .operator,
                summary: "\(verb.prefix(1).uppercased() + verb.dropFirst()) a campaign",
                responseSchema: Schemas.campaignDetail,
                failures: [("409", "The campaign's state does not allow \(verb)")],
                handler: { service, _, parameters throws(APIError) in
                    let id = try campaignID(parameters)
                    return .json(try service.withOTA { ota throws(OTARequestError) in try ota.control(id, verb: verb) })
                })
        } + [
            Route(
                method: "GET", pattern: ["v1", "ota", "vehicles"], access: .viewer,
                summary: "Firmware each vehicle last reported (hardware, version, counter, SHA-256)",
                responseSchema: Schemas.vehicleInventory,
                handler: { service, _, _ throws(APIError) in
                    .json(try service.withOTA { ota throws(OTARequestError) in ota.vehicles() })
                })
        ]

    static func campaignID(_ parameters: [String: String]) throws(APIError) -> UInt32 {
        guard let id = UInt32(parameters["id"] ?? ""), id > 0 else {
            throw APIError(.notFound, "unknown_campaign", "campaign ids are positive integers")
        }
        return id
    }

    func withOTA<T>(_ body: (OTAService) throws(OTARequestError) -> T) throws(APIError) -> T {
        guard let ota else {
            throw APIError(.notFound, "ota_disabled", "OTA is turned off on this gateway (ota.enabled)")
        }
        do {
            return try body(ota)
        } catch {
            throw APIError(HTTPStatus(error.status, Self.reason(error.status)), error.code, error.message)
        }
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 404: "Not Found"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 422: "Unprocessable Content"
        case 507: "Insufficient Storage"
        default: "Service Unavailable"
        }
    }

    func putBlob(_ request: HTTPRequest, _ parameters: [String: String]) throws(APIError) -> HTTPResponse {
        guard let offsetText = request.head.queryValue("offset"), let offset = UInt64(offsetText) else {
            throw .badParameter("offset", "required: where this chunk starts (the blob's received count)")
        }
        guard let lengthText = request.head.queryValue("length"), let length = UInt64(lengthText) else {
            throw .badParameter("length", "required: the whole blob's length in bytes")
        }
        let status = try withOTA { ota throws(OTARequestError) in
            try ota.uploadBlob(sha256: parameters["sha256"] ?? "", length: length, offset: offset, bytes: request.body)
        }
        return .json(status)
    }

    /// OTA families for `/metrics`.
    func otaMetrics(_ out: inout PrometheusText) {
        guard let ota else { return }
        let metrics = ota.metrics
        func counter(_ name: String, _ help: String, _ value: UInt64) {
            out.counter(name, help: help, Int64(truncatingIfNeeded: value))
        }
        counter(
            "gateway_ota_blocks_served_total", "OTA blocks published to vehicles.",
            metrics.blocksServed.load(ordering: .relaxed))
        counter(
            "gateway_ota_bytes_served_total", "OTA payload bytes published to vehicles.",
            metrics.bytesServed.load(ordering: .relaxed))
        counter(
            "gateway_ota_requests_refused_total",
            "Block requests for a campaign or file the vehicle does not hold, or out of range.",
            metrics.requestsRefused.load(ordering: .relaxed))
        counter(
            "gateway_ota_requests_dropped_total",
            "Block requests dropped with the send queue full (vehicles ask again).",
            metrics.requestsDropped.load(ordering: .relaxed))
        counter(
            "gateway_ota_blocks_deduplicated_total", "Requested blocks already queued for the vehicle, served once.",
            metrics.blocksDeduplicated.load(ordering: .relaxed))
        counter(
            "gateway_ota_malformed_messages_total", "OTA messages that did not parse.",
            metrics.malformedMessages.load(ordering: .relaxed))
        counter(
            "gateway_ota_reports_total", "Vehicle status reports received.", metrics.reports.load(ordering: .relaxed))
        counter("gateway_ota_offers_total", "Offers published.", metrics.offersPublished.load(ordering: .relaxed))
        out.family(
            "gateway_ota_throttled_seconds_total", type: "counter",
            help: "Time the block sender waited for the bandwidth cap.")
        out.sample(
            "gateway_ota_throttled_seconds_total", [], Double(metrics.throttledNanos.load(ordering: .relaxed)) / 1e9)
        if let fleet = metrics.fleet.withLock({ $0 }) {
            out.gauge(
                "gateway_fleet_connected", help: "1 while the fleet link to the city broker is up (ota.fleet).",
                fleet.connected ? 1 : 0)
            out.counter(
                "gateway_fleet_orders_applied_total", help: "Signed fleet campaigns and commands taken.",
                fleet.ordersApplied)
            out.family(
                "gateway_fleet_refused_total", type: "counter",
                help: "Releases, orders and chunks from the city side refused, by code (bad_signature, unsigned, replayed, ...).")
            for (code, count) in fleet.refused.sorted(by: { $0.key < $1.key }) {
                out.sample("gateway_fleet_refused_total", [("code", code)], count)
            }
            out.counter(
                "gateway_fleet_duplicates_total", help: "Announcements delivered again by the broker, taken once.",
                fleet.duplicates)
            out.counter(
                "gateway_fleet_releases_verified_total", help: "Fleet releases fetched whole and verified.",
                fleet.releasesVerified)
            out.counter(
                "gateway_fleet_fetched_bytes_total", help: "Blob bytes fetched from the depot over the city link.",
                fleet.bytesFetched)
            out.counter("gateway_fleet_fetch_requests_total", help: "Range requests sent to the depot.", fleet.fetchRequests)
            out.counter("gateway_fleet_reports_sent_total", help: "Fleet reports published upstream.", fleet.reportsSent)
            out.counter(
                "gateway_fleet_reports_dropped_total",
                help: "Refusal reports not queued: the fleet report backlog was at its cap (10 000).", fleet.reportsDropped)
            out.gauge(
                "gateway_fleet_report_backlog", help: "Fleet reports not yet acknowledged by the city broker.",
                Double(fleet.backlog))
        }
        let gauges = ota.gauges()
        out.gauge(
            "gateway_ota_transfers", help: "Vehicles offered or downloading (holding a transfer slot).",
            Double(gauges.transfers))
        out.gauge(
            "gateway_ota_queued_requests", help: "Block requests waiting to be served.", Double(gauges.queuedRequests))
        out.family("gateway_ota_campaigns", type: "gauge", help: "Campaigns by state.")
        for (state, count) in gauges.campaigns.sorted(by: { $0.key < $1.key }) {
            out.sample("gateway_ota_campaigns", [("state", state)], Int64(count))
        }
        out.family("gateway_ota_vehicles", type: "gauge", help: "Vehicles in campaigns not yet over, by state.")
        for (state, count) in gauges.vehicles.sorted(by: { $0.key < $1.key }) {
            out.sample("gateway_ota_vehicles", [("state", state)], Int64(count))
        }
    }
}
