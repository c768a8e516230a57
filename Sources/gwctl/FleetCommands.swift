import Crypto
import Dispatch
import Fleet
import Foundation
import JSON
import Logging
import MQTT
import OTA
import Synchronization

/// `gwctl fleet ...`: one release and campaign for every gateway, through the city broker and
/// the operator's depot (Firmware-Protocols/upstream.md, "Fleet OTA").
enum FleetCommands {
    static func depot() -> DepotStore {
        let directory = OTACommands.required("--depot")
        do { return try DepotStore(directory: directory) } catch {
            fail("cannot open the depot \(directory): \(error)", code: 73)
        }
    }

    static var prefix: String { arguments.value("--prefix") ?? "city" }

    /// The city broker connection from --broker/--broker-ca/--broker-cert/--broker-key.
    static func brokerConfiguration(clientID: String) -> MQTTClient.Configuration {
        var mqtt = MQTTClient.Configuration(clientID: clientID)
        var nodes: [MQTTClient.Configuration.Endpoint] = []
        for text in OTACommands.required("--broker").split(separator: ",") {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (1...65535).contains(port)
            else { fail("--broker takes host:port[,host:port...], not \(text)", code: 64) }
            nodes.append(.init(host: String(text[..<colon]), port: port))
        }
        mqtt.brokers = nodes
        mqtt.tls = .init(
            caFile: OTACommands.required("--broker-ca"), certFile: OTACommands.required("--broker-cert"),
            keyFile: OTACommands.required("--broker-key"))
        mqtt.maxInflightMessages = 64
        return mqtt
    }

    static var logger: Logger { Logger(level: .warning) }

    static func publisher() -> FleetPublisher {
        do {
            return try FleetPublisher(
                mqtt: brokerConfiguration(clientID: "gwctl-fleet-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"),
                logger: logger)
        } catch { fail("cannot set up the city broker connection: \(error)", code: 69) }
    }

    static func publish(_ publisher: FleetPublisher, _ topic: String, _ payload: [UInt8]) {
        do { try publisher.publish(topic: topic, payload: payload) } catch { fail(error.description, code: 69) }
    }

    static var nowMs: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: - push

    /// Signs (or takes) a release, puts its blobs in the depot, announces it to every gateway,
    /// and with --campaign starts a signed fleet campaign for it.
    static func push(_ imagePath: String) {
        let store = depot()
        let release: OTACommands.Release
        if let manifestPath = arguments.value("--manifest") {
            let signed: SignedManifest
            do { signed = try SignedManifest(bytes: OTACommands.readFile(manifestPath)) } catch {
                fail("\(manifestPath): \(error)", code: 65)
            }
            release = .init(
                signed: signed, image: OTACommands.readFile(imagePath),
                delta: arguments.value("--delta").map(OTACommands.readFile))
        } else {
            release = OTACommands.buildRelease(imagePath: imagePath)
        }
        let manifest = release.signed.manifest
        guard SHA256.hex(release.image) == manifest.sha256 else {
            fail("\(imagePath) does not hash to the manifest's sha256 \(manifest.sha256)", code: 65)
        }
        let campaignName = arguments.value("--campaign")
        if campaignName != nil, manifest.targets == .all, arguments.value("--waves").map({ $0 != "100" }) == true {
            fail(
                "a fleet campaign's waves are cut from the manifest's VIN list (the same on every gateway): "
                    + "sign it with --vins, or run --all in one wave", code: 64)
        }
        if let campaignName, (try? store.campaignManifest(campaignName)) != nil {
            fail("campaign \(campaignName) was already published; choose a new name", code: 65)
        }
        let manifestBytes = Array(release.signed.json.serialized().utf8)
        do {
            _ = try store.addBlob(release.image)
            if let delta = release.delta { _ = try store.addBlob(delta) }
            try store.record(
                release: release.signed.digest, name: manifest.name, version: manifest.version, sha256: manifest.sha256,
                length: manifest.length, manifest: manifestBytes, nowMs: nowMs)
        } catch { fail("cannot write the depot: \(error)", code: 74) }
        let topics = FleetTopics(prefix: prefix)
        let publisher = publisher()
        publish(publisher, topics.releases, manifestBytes)
        var output: [(key: String, value: JSONValue)] = [
            ("manifest", .string(release.signed.digest)), ("release", .string("\(manifest.name) \(manifest.version)")),
            ("bytes", .int(Int64(manifest.length))),
        ]
        if let campaignName {
            var key: [UInt8]
            do { key = try SecureRandom.bytes(32) } catch { fail("no randomness: \(error)") }
            let document = FleetDocument(
                campaign: campaignName, sequence: 1, issued: nowMs / 1000,
                body: .campaign(
                    manifest: release.signed.digest, settings: OTACommands.campaignSettings(), vehicleKey: key)
            ).signed(with: OTACommands.loadKeys())
            announce(document, store: store, publisher: publisher)
            output.append(("campaign", .string(campaignName)))
            output.append(("vehicle_key", .string(Hex.encode(key))))
        }
        if wantsJSON { return print(JSONValue.object(JSONObject(output)).serialized()) }
        print("release \(manifest.name) \(manifest.version) announced to the fleet: manifest \(release.signed.digest)")
        if let campaignName {
            print("campaign \(campaignName) published (sequence 1)")
            print("follow it with: gwctl ota status --city \(campaignName) --depot \(store.directory)")
        }
    }

    static func announce(_ document: FleetDocument, store: DepotStore, publisher: FleetPublisher) {
        do { try store.record(order: FleetDocumentRecord(document), nowMs: nowMs) } catch {
            fail("cannot record the order in the depot: \(error)", code: 74)
        }
        publish(publisher, FleetTopics(prefix: prefix).orders, Array(document.json.serialized().utf8))
    }

    // MARK: - commands

    static func command(_ verb: FleetDocument.Verb, campaign: String) {
        let store = depot()
        let sequence: UInt64
        do {
            guard try store.campaignManifest(campaign) != nil else {
                fail("the depot has no campaign \(campaign): gwctl fleet push --campaign starts one", code: 65)
            }
            sequence = try store.nextSequence(campaign: campaign)
        } catch { fail("cannot read the depot: \(error)", code: 74) }
        let document = FleetDocument(
            campaign: campaign, sequence: sequence, issued: nowMs / 1000, body: .command(verb)
        ).signed(with: OTACommands.loadKeys())
        announce(document, store: store, publisher: publisher())
        if wantsJSON {
            return print(
                JSONValue.object(
                    JSONObject([
                        ("campaign", .string(campaign)), ("verb", .string(verb.rawValue)),
                        ("sequence", .int(Int64(sequence))),
                    ])
                ).serialized())
        }
        print("\(verb.rawValue) sent to every gateway of campaign \(campaign) (sequence \(sequence))")
    }

    // MARK: - announce

    /// Publishes a campaign's release and every one of its orders again, in order, to the
    /// gateways named by --to: one that joined the city after the push takes them all.
    static func announce(campaign: String) {
        let gateways = OTACommands.required("--to").split(separator: ",").map(String.init)
        guard gateways.allSatisfy(FleetTopics.isGatewayID) else {
            fail("--to takes gateway ids (1 to 64 of A-Z a-z 0-9 _ -), comma-separated", code: 64)
        }
        let store = depot()
        let orders: [[UInt8]]
        let release: (digest: String, manifest: [UInt8])
        do {
            guard let digest = try store.campaignManifest(campaign), let found = try store.release(matching: digest)
            else {
                fail("the depot has no campaign \(campaign): gwctl fleet push --campaign starts one", code: 65)
            }
            release = found
            orders = try store.orders(campaign: campaign)
        } catch { fail("cannot read the depot: \(error)", code: 74) }
        let topics = FleetTopics(prefix: prefix)
        let publisher = publisher()
        for gateway in gateways {
            publish(publisher, topics.releases(to: gateway), release.manifest)
            for order in orders { publish(publisher, topics.orders(to: gateway), order) }
        }
        if wantsJSON {
            return print(
                JSONValue.object(
                    JSONObject([
                        ("campaign", .string(campaign)), ("manifest", .string(release.digest)),
                        ("orders", .int(Int64(orders.count))), ("gateways", .array(gateways.map { .string($0) })),
                    ])
                ).serialized())
        }
        print(
            "campaign \(campaign): its release and \(orders.count) order(s) announced again to "
                + gateways.joined(separator: ", "))
    }

    // MARK: - serve

    static func serve() {
        let store = depot()
        let keyPath = OTACommands.required("--tally-key")
        let tallyKey: Ed25519.PrivateKey
        do {
            tallyKey = try Ed25519.PrivateKey(pem: String(decoding: OTACommands.readFile(keyPath), as: UTF8.self))
        } catch {
            fail("\(keyPath) is not an Ed25519 private key in PEM (gwctl ota keygen makes one): \(error)", code: 65)
        }
        let server: FleetDepot
        do {
            server = try FleetDepot(
                store: store, prefix: prefix,
                mqtt: brokerConfiguration(clientID: arguments.value("--client-id") ?? "ota-depot"), tallyKey: tallyKey,
                logger: Logger(level: .info))
        } catch { fail("cannot set up the depot: \(error)", code: 69) }
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let stop = Stop()
        let sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.flag.store(true, ordering: .relaxed) }
            source.resume()
            return source
        }
        Logger(level: .info).info("depot_serving", [("depot", store.directory), ("prefix", prefix)])
        server.run { stop.flag.load(ordering: .relaxed) }
        for source in sources { source.cancel() }
        let counters = server.snapshot
        Logger(level: .info).info(
            "depot_stopped",
            [
                ("requests", String(counters.requests)), ("bytes", String(counters.bytes)),
                ("reports", String(counters.reports)), ("refused", String(counters.refused)),
            ])
    }

    final class Stop: Sendable {
        let flag = Atomic<Bool>(false)
    }

    // MARK: - status

    static func status(campaign: String) {
        let store = depot()
        let view: JSONValue
        do { view = try store.fleetStatus(campaign: campaign) } catch {
            fail("cannot read the depot: \(error)", code: 74)
        }
        if wantsJSON { return print(view.serialized()) }
        guard case .bool(true)? = view["known"] else { fail("the depot has no campaign \(campaign)", code: 65) }
        print("campaign \(campaign): \(integer(view["vehicles"])) vehicle(s) reported")
        if let states = view["by_state"]?.object {
            print("  by state: " + states.members.map { "\($0.key) \(integer($0.value))" }.joined(separator: ", "))
        }
        print("")
        print("GATEWAY                  RELEASE    FETCHED      REFUSALS  VEHICLES")
        for gateway in view["gateways"]?.arrayValue ?? [] {
            let vehicles = gateway["vehicles"]?.object?.members.map { "\($0.key) \(integer($0.value))" }
                .joined(separator: ", ")
            print(
                (gateway["gateway"]?.string ?? "").padding(toLength: 25, withPad: " ", startingAt: 0)
                    + (gateway["release"]?.string ?? "-").padding(toLength: 11, withPad: " ", startingAt: 0)
                    + String(integer(gateway["image_bytes_fetched"])).padding(toLength: 13, withPad: " ", startingAt: 0)
                    + String(integer(gateway["refusals"])).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + (vehicles ?? ""))
        }
        if let missing = view["without_release"]?.arrayValue, !missing.isEmpty {
            print("")
            print("without the verified release: " + missing.compactMap(\.string).joined(separator: ", "))
        }
        if let failures = view["failures"]?.arrayValue, !failures.isEmpty {
            print("")
            print("failures:")
            for failure in failures {
                print(
                    "  \(failure["vehicle"]?.string ?? "") at \(failure["gateway"]?.string ?? ""): "
                        + "\(failure["state"]?.string ?? "") \(failure["reason"]?.string ?? "")")
            }
        }
    }
}
