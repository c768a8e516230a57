import Campaigns
import JSON
import OTA

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// JSON Schemas of the responses, for the OpenAPI document.
enum Schemas {
    static func type(_ name: String) -> JSONValue { .object(JSONObject([("type", .string(name))])) }
    static let string = type("string")
    static let integer = type("integer")
    static let number = type("number")
    static let boolean = type("boolean")
    static let object = type("object")
    static let nullableString = JSONValue.object(JSONObject([("type", .array([.string("string"), .string("null")]))]))
    static let nullableNumber = JSONValue.object(JSONObject([("type", .array([.string("number"), .string("null")]))]))

    static func object(_ properties: [(String, JSONValue)]) -> JSONValue {
        .object(
            JSONObject([
                ("type", .string("object")),
                ("properties", .object(JSONObject(properties.map { ($0.0, $0.1) }))),
                ("required", .array(properties.map { .string($0.0) })),
            ]))
    }

    /// An object some of whose properties may be missing.
    static func object(_ properties: [(String, JSONValue)], required: [String]) -> JSONValue {
        .object(
            JSONObject([
                ("type", .string("object")),
                ("properties", .object(JSONObject(properties.map { ($0.0, $0.1) }))),
                ("required", .array(required.map { .string($0) })),
            ]))
    }

    static func constant(_ value: String) -> JSONValue {
        .object(JSONObject([("type", .string("string")), ("const", .string(value))]))
    }

    static func enumeration(_ values: [String]) -> JSONValue {
        .object(JSONObject([("type", .string("string")), ("enum", .array(values.map { .string($0) }))]))
    }

    static func integer(minimum: Int64, maximum: Int64? = nil, default value: Int64? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("type", .string("integer")), ("minimum", .int(minimum))]
        if let maximum { members.append(("maximum", .int(maximum))) }
        if let value { members.append(("default", .int(value))) }
        return .object(JSONObject(members))
    }

    static func pattern(_ pattern: String, maxLength: Int64) -> JSONValue {
        .object(
            JSONObject([
                ("type", .string("string")), ("pattern", .string(pattern)), ("minLength", .int(1)),
                ("maxLength", .int(maxLength)),
            ]))
    }

    /// A vehicle's VIN or a sensor's id, as the server checks them (SensorID): 1 to 64 of
    /// A-Z a-z 0-9 _ . -, not starting with . - or _, no "..".
    static let deviceID = pattern("^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", maxLength: 64)
    static let sha256 = pattern("^[0-9a-f]{64}$", maxLength: 64)
    static let campaignID = integer(minimum: 1, maximum: Int64(UInt32.max))
    static func limit(default value: Int64) -> JSONValue { integer(minimum: 1, maximum: 1000, default: value) }
    /// Counts keyed by a name (reject reasons).
    static let counts = JSONValue.object(
        JSONObject([("type", .string("object")), ("additionalProperties", integer(minimum: 0))]))

    static func array(_ items: JSONValue) -> JSONValue {
        .object(JSONObject([("type", .string("array")), ("items", items)]))
    }

    static let device = object([
        ("id", string), ("kind", string), ("last_seen_ms", integer), ("online", boolean), ("fw", nullableString),
        ("hw", nullableString), ("model", nullableString), ("first_seen_ms", integer), ("seq_gaps", integer),
        ("duplicates", integer), ("seq_resets", integer), ("readings", integer),
    ])

    static let binary = JSONValue.object(JSONObject([("type", .string("string")), ("format", .string("binary"))]))
    static let blobStatus = object([
        ("sha256", string), ("length", .object(JSONObject([("type", .array([.string("integer"), .string("null")]))]))),
        ("received", integer), ("complete", boolean),
    ])
    static let manifest = object([
        ("id", integer), ("digest", string), ("name", string), ("version", string), ("release_counter", integer),
        ("hardware_id", string), ("sha256", string), ("length", integer), ("created_ms", integer),
    ])
    static let campaignInput = JSONValue.object(
        JSONObject([
            ("type", .string("object")),
            (
                "properties",
                .object(
                    JSONObject([
                        ("manifest", integer), ("waves", array(integer)), ("success_pct", integer),
                        ("abort_failure_pct", integer), ("abort_min_finished", integer), ("vehicle_timeout_s", integer),
                        ("retries", integer), ("window", nullableString),
                    ]))
            ),
            ("required", .array([.string("manifest")])),
        ]))

    static let manifestList = object([("manifests", array(manifest))])

    static let nullableInteger = JSONValue.object(
        JSONObject([("type", .array([.string("integer"), .string("null")]))]))

    /// The signed release manifest as uploaded (Firmware-Protocols/ota.md §2). The server checks
    /// every field itself; this says the shape, for clients that build one.
    static let signedManifest = object([
        (
            "signed",
            object([
                ("type", constant("tg-release-v1")), ("name", pattern("^[A-Za-z0-9._-]+$", maxLength: 64)),
                ("version", pattern("^[A-Za-z0-9.+_-]+$", maxLength: 64)),
                ("release_counter", integer(minimum: 1, maximum: (1 << 53) - 1)),
                ("hardware_id", pattern("^[A-Za-z0-9._-]+$", maxLength: 64)),
                ("length", integer(minimum: 1, maximum: (1 << 53) - 1)), ("sha256", sha256),
                (
                    "deltas",
                    array(
                        object([
                            ("from_sha256", sha256), ("patch_sha256", sha256),
                            ("patch_length", integer(minimum: 0, maximum: (1 << 53) - 1)), ("format", string),
                        ]))
                ),
                (
                    "targets",
                    .object(
                        JSONObject([
                            (
                                "oneOf",
                                .array([
                                    object([("all", .object(JSONObject([("const", .bool(true))])))]),
                                    object([("vins", array(pattern("^[A-HJ-NPR-Z0-9]{17}$", maxLength: 17)))]),
                                ])
                            )
                        ]))
                ),
                ("created", integer(minimum: 0, maximum: (1 << 53) - 1)),
                ("expires", integer(minimum: 0, maximum: (1 << 53) - 1)),
            ])
        ),
        (
            "signatures",
            array(
                object([
                    ("key_id", pattern("^[0-9a-f]{32}$", maxLength: 32)),
                    ("sig", pattern("^[0-9a-f]{128}$", maxLength: 128)),
                ])
            )
        ),
    ])

    static let campaignSettings = object([
        ("waves", array(integer(minimum: 1, maximum: 100))), ("success_pct", integer(minimum: 0, maximum: 100)),
        ("abort_failure_pct", integer(minimum: 0, maximum: 100)), ("abort_min_finished", integer(minimum: 0)),
        ("vehicle_timeout_s", integer(minimum: 1)), ("retries", integer(minimum: 0)), ("window", nullableString),
    ])

    static func campaignObject(vehicles: Bool) -> JSONValue {
        var properties: [(String, JSONValue)] = [
            ("id", campaignID), ("state", enumeration(CampaignState.allCases.map(\.rawValue))),
            ("reason", nullableString), ("manifest_id", integer), ("release", string), ("release_counter", integer),
            ("hardware_id", string), ("wave", integer(minimum: 1)), ("settings", campaignSettings),
            ("targets", integer(minimum: 0)),
            ("counts", object(VehicleState.allCases.map { ($0.rawValue, integer(minimum: 0)) })),
            ("created_ms", integer), ("updated_ms", integer),
        ]
        if vehicles {
            properties.append(
                (
                    "vehicles",
                    array(
                        object([
                            ("vin", string), ("state", enumeration(VehicleState.allCases.map(\.rawValue))),
                            ("wave", integer(minimum: 1)),
                            (
                                "file",
                                .object(
                                    JSONObject([
                                        ("type", .array([.string("string"), .string("null")])),
                                        ("enum", .array([.string("full"), .string("delta"), .null])),
                                    ]))
                            ),
                            ("blocks_done", integer(minimum: 0)), ("blocks_total", integer(minimum: 0)),
                            ("fetched_blocks", integer(minimum: 0)), ("attempts", integer(minimum: 0)),
                            ("reason", nullableString), ("detail", nullableString), ("updated_ms", integer),
                        ]))
                ))
        }
        return object(properties)
    }

    static let campaign = campaignObject(vehicles: false)
    static let campaignDetail = campaignObject(vehicles: true)
    static let campaignList = object([("campaigns", array(campaign))])
    static let vehicleInventory = object([
        (
            "vehicles",
            array(
                object([
                    ("vin", string), ("hardware_id", string), ("version", string), ("counter", integer(minimum: 0)),
                    ("sha256", sha256),
                ]))
        )
    ])

    static let devicePage = object([("devices", array(device)), ("next_cursor", nullableString)])

    static let deviceDetail: JSONValue = {
        guard case .object(var schema) = device, case .object(var properties)? = schema["properties"],
            case .array(var required)? = schema["required"]
        else { return device }
        properties.members.append(
            ("latest", array(object([("signal", string), ("unit", string), ("ts_ms", integer), ("value", number)]))))
        properties.members.append(("thresholds", thresholds))
        properties.members.append(("forecast", forecast))
        required.append(.string("latest"))
        schema.members = schema.members.map {
            $0.key == "properties"
                ? ($0.key, .object(properties)) : $0.key == "required" ? ($0.key, .array(required)) : $0
        }
        return .object(schema)
    }()

    /// A gauge's alert levels (water gauges only).
    static let thresholds = object([("warning_cm", number), ("alarm_cm", number), ("hysteresis_cm", number)])

    /// A gauge's trend (water gauges only); the numbers are null when the status gives none.
    static let forecast = object([
        ("status", enumeration(["rising", "steady", "falling", "insufficient", "noisy"])),
        ("slope_cm_per_min", nullableNumber), ("minutes_to_warning", nullableNumber),
        ("minutes_to_alarm", nullableNumber), ("points", integer(minimum: 0)), ("detail", string),
    ])

    static let series = array(
        object([("time", integer), ("count", integer), ("min", number), ("max", number), ("mean", number)]))

    static let alerts = object([
        (
            "alerts",
            array(
                object([
                    ("id", string), ("device", string), ("type", string), ("subject", string), ("state", string),
                    ("value", number), ("ts_ms", integer),
                ]))
        )
    ])

    static let rejects = object([
        ("counts_held", counts), ("counts_since_start", counts),
        ("recent", array(object([("ts_ms", integer), ("topic", string), ("reason", string), ("detail", string)]))),
    ])

    static let health = object([
        ("status", string), ("version", string), ("gateway_id", string), ("uptime_s", integer),
        ("broker", object([("connected", boolean)])),
        (
            "certificates",
            .object(
                JSONObject([
                    ("type", .string("object")), ("additionalProperties", integer),
                    (
                        "description",
                        .string(
                            "Seconds until each certificate the gateway presents expires (upstream, http); negative: expired"
                        )
                    ),
                ]))
        ),
        (
            "upstream",
            object([
                ("configured", boolean), ("connected", boolean), ("backlog_messages", integer),
                ("backlog_bytes", integer), ("limit_bytes", integer),
                ("node", .object(JSONObject([("type", .array([.string("string"), .string("null")]))]))),
                ("failovers", integer),
                (
                    "oldest_unsent_age_s",
                    .object(JSONObject([("type", .array([.string("integer"), .string("null")]))]))
                ),
            ])
        ),
        (
            "store",
            object([
                ("readings", integer), ("capacity_readings", integer), ("fill_ratio", number), ("full", boolean),
                ("full_events", integer), ("readings_dropped_for_space", integer),
                ("readings_evicted", integer), ("file_bytes", integer), ("devices", integer),
                ("alerts_active", integer),
            ])
        ),
        (
            "privacy",
            object([
                ("position_retention_s", integer),
                (
                    "oldest_position_age_s",
                    .object(JSONObject([("type", .array([.string("integer"), .string("null")]))]))
                ),
                ("positions_erased", integer),
                ("vehicles_forgotten", integer),
            ])
        ),
        ("rates", object([("readings_per_s", number), ("outbox_bytes_per_s", number)])),
        (
            "headroom",
            object([
                ("readings_unaggregated_hours", nullableNumber), ("ring_full_hours", nullableNumber),
                ("raw_retention_hours", nullableNumber), ("outbox_full_hours", nullableNumber),
            ])
        ),
    ])

    static let erasure = object(
        [
            ("device", string), ("known", boolean),
            (
                "removed",
                object(
                    [
                        "readings", "positions", "events", "aggregates", "alerts", "active_alerts", "advisories",
                        "rejects", "outbox_rewritten", "outbox_deleted", "ota_records",
                    ].map { ($0, integer) })
            ),
            ("upstream_names", integer), ("wal_truncated", boolean),
        ], required: ["device", "known", "removed", "upstream_names", "wal_truncated"])

    static let site = object([("sensor", string), ("lat", number), ("lon", number), ("radius_m", number)])
    static let point = object([
        ("type", constant("Point")),
        (
            "coordinates",
            .object(
                JSONObject([
                    ("type", .string("array")), ("items", number), ("minItems", .int(2)), ("maxItems", .int(2)),
                    ("description", .string("[longitude, latitude] in degrees (WGS 84)")),
                ]))
        ),
    ])
    static let gaugeProperties = object(
        [
            ("kind", constant("gauge")), ("device", string), ("radius_m", number),
            ("state", enumeration(["normal", "warning", "alarm"])), ("level_cm", number), ("level_ts_ms", integer),
            ("forecast", forecast),
        ], required: ["kind", "device", "radius_m", "state"])
    static let vehicleProperties = object(
        [
            ("kind", constant("vehicle")), ("device", string), ("ts_ms", integer), ("age_s", integer(minimum: 0)),
            ("speed_kmh", number), ("heading_deg", number),
        ], required: ["kind", "device", "ts_ms", "age_s"])
    static let featureCollection = object([
        ("type", constant("FeatureCollection")),
        (
            "features",
            array(
                object([
                    ("type", constant("Feature")), ("id", string), ("geometry", point),
                    ("properties", .object(JSONObject([("oneOf", .array([gaugeProperties, vehicleProperties]))]))),
                ]))
        ),
    ])

    /// Free-form on purpose, and said so: the running configuration (the keys of README's
    /// configuration tables, as `gatewayd --print-default-config` prints them).
    static let configuration = JSONValue.object(
        JSONObject([
            ("type", .string("object")), ("additionalProperties", .bool(true)),
            (
                "description",
                .string(
                    "The running configuration, as gatewayd --print-default-config prints it; token hashes left out")
            ),
        ]))
    static let openAPI = JSONValue.object(
        JSONObject([
            ("type", .string("object")), ("additionalProperties", .bool(true)),
            ("description", .string("This OpenAPI 3.1 document")),
        ]))

    static let siteInput = object([("lat", number), ("lon", number), ("radius_m", number)])

    static let error = object([("error", object([("code", string), ("message", string)]))])
}

extension APIService {
    /// OpenAPI 3.1, generated from the route table that also serves the requests.
    func openAPIDocument() -> JSONValue {
        var paths: [(key: String, value: JSONValue)] = []
        for route in routes {
            var responses: [(key: String, value: JSONValue)] = route.successes.map { success in
                (
                    success.code,
                    .object(
                        JSONObject([
                            ("description", .string(success.description)),
                            (
                                "content",
                                .object(
                                    JSONObject([
                                        (route.responseType, .object(JSONObject([("schema", route.responseSchema)])))
                                    ]))
                            ),
                        ]))
                )
            }
            if route.access == .health {
                // The same body with status `down`: a load balancer takes the gateway out.
                responses.append(
                    (
                        "503",
                        .object(
                            JSONObject([
                                ("description", .string("The local broker is down (status down)")),
                                (
                                    "content",
                                    .object(
                                        JSONObject([
                                            (
                                                "application/json",
                                                .object(JSONObject([("schema", route.responseSchema)]))
                                            )
                                        ]))
                                ),
                            ]))
                    ))
            }
            var failures = [
                ("400", "Invalid parameters"), ("401", "No or unknown token"), ("403", "Role too low"),
                ("408", "The request's headers or body did not arrive in time (http.header_timeout_ms)"),
                ("500", "The store could not be read; the message says why"),
            ]
            if route.access != .health {
                failures.append(
                    ("503", "Too many connections (http.max_connections), or the store is busy; retry later"))
            }
            if route.maxBodyBytes > 0 {
                failures += [("411", "No Content-Length"), ("413", "Body larger than this route takes")]
            }
            for failure in route.failures where !failures.contains(where: { $0.0 == failure.code }) {
                failures.append((failure.code, failure.description))
            }
            if route.pattern.contains(where: { $0.hasPrefix("{") }) || route.pattern.starts(with: ["v1", "ota"]) {
                failures.append(
                    (
                        "404",
                        route.pattern.starts(with: ["v1", "ota"])
                            ? "Not found, or OTA turned off (ota.enabled)" : "Not found"
                    ))
            }
            for (code, text) in failures.sorted(by: { $0.0 < $1.0 }) {
                responses.append((code, errorResponse(text)))
            }
            var parameters: [JSONValue] = route.pattern.filter { $0.hasPrefix("{") }.map {
                let name = String($0.dropFirst().dropLast())
                let schema =
                    switch (name, route.pattern.dropLast().last) {
                    case ("sha256", _): Schemas.sha256
                    case ("id", "campaigns"): Schemas.campaignID
                    case ("id", _): Schemas.deviceID
                    default: Schemas.string
                    }
                return .object(
                    JSONObject([
                        ("name", .string(name)), ("in", .string("path")), ("required", .bool(true)),
                        ("schema", schema),
                    ]))
            }
            parameters += route.query.map {
                .object(
                    JSONObject([
                        ("name", .string($0.name)), ("in", .string("query")), ("required", .bool($0.required)),
                        ("description", .string($0.description)), ("schema", $0.schema),
                    ]))
            }
            var operation: [(key: String, value: JSONValue)] = [
                ("summary", .string(route.summary)),
                ("operationId", .string(operationID(route))),
                ("parameters", .array(parameters)),
                ("responses", .object(JSONObject(responses))),
            ]
            if let schema = route.requestSchema {
                operation.append(
                    (
                        "requestBody",
                        .object(
                            JSONObject([
                                ("required", .bool(true)),
                                (
                                    "content",
                                    .object(
                                        JSONObject([(route.requestType, .object(JSONObject([("schema", schema)])))]))
                                ),
                            ]))
                    ))
            }
            if !isOpen(route.access) {
                operation.append(("security", .array([.object(JSONObject([("bearer", .array([]))]))])))
                operation.append(("x-required-role", .string(route.access == .operator ? "operator" : "viewer")))
                if let note = route.positionsScope {
                    operation.append(("x-scopes", .object(JSONObject([("positions", .string(note))]))))
                    operation.append(("description", .string("Scope `positions`: " + note)))
                }
            } else {
                operation.append(("security", .array([])))
            }
            // One path item per path, with an operation per method.
            if let index = paths.firstIndex(where: { $0.key == route.label }),
                case .object(var item) = paths[index].value
            {
                item[route.method.lowercased()] = .object(JSONObject(operation))
                paths[index].value = .object(item)
            } else {
                paths.append(
                    (route.label, .object(JSONObject([(route.method.lowercased(), .object(JSONObject(operation)))]))))
            }
        }
        return .object(
            JSONObject([
                ("openapi", .string("3.1.0")),
                (
                    "info",
                    .object(
                        JSONObject([
                            ("title", .string("telemetry-gateway REST API")), ("version", .string(status().version)),
                            (
                                "description",
                                .string(
                                    "Read access to a roadside gateway's devices, series, alerts and rejects. "
                                        + "Bearer tokens carry a role: viewer (reads) or operator (reads and admin).")
                            ),
                        ]))
                ),
                ("paths", .object(JSONObject(paths))),
                (
                    "components",
                    .object(
                        JSONObject([
                            (
                                "securitySchemes",
                                .object(
                                    JSONObject([
                                        (
                                            "bearer",
                                            .object(
                                                JSONObject([("type", .string("http")), ("scheme", .string("bearer"))]))
                                        )
                                    ]))
                            ),
                            ("schemas", .object(JSONObject([("Error", Schemas.error)]))),
                        ]))
                ),
            ]))
    }

    func isOpen(_ access: Access) -> Bool {
        access == .public || (access == .health && configuration.openHealth)
            || (access == .metrics && configuration.openMetrics)
    }

    private func operationID(_ route: Route) -> String {
        route.method.lowercased()
            + route.pattern.map { part in
                let clean = part.replacing("{", with: "").replacing("}", with: "")
                    .replacing(".", with: "_")
                return clean.prefix(1).uppercased() + clean.dropFirst()
            }.joined()
    }

    private func errorResponse(_ description: String) -> JSONValue {
        .object(
            JSONObject([
                ("description", .string(description)),
                (
                    "content",
                    .object(
                        JSONObject([
                            (
                                "application/json",
                                .object(
                                    JSONObject([
                                        (
                                            "schema",
                                            .object(JSONObject([("$ref", .string("#/components/schemas/Error"))]))
                                        )
                                    ]))
                            )
                        ]))
                ),
            ]))
    }
}
