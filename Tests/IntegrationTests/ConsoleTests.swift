import Crypto
import Foundation
import JSON
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The console (README, "The console") in a real browser: headless Chromium against a real
/// gatewayd with gwsim traffic, a gauge driven to alarm and a vehicle placed beside it.
@Suite(
    .serialized, .timeLimit(.minutes(5)),
    .enabled(if: Chromium.executable != nil, "needs Debian's chromium (apt-get install chromium)"))
struct ConsoleTests {
    static let operatorToken = "operator-token-for-the-console"
    static let viewerToken = "viewer-token-for-the-console"
    /// An operator who may also see vehicle positions.
    static let trackerToken = "tracker-token-for-the-console"
    static let gauge = "drain-7"
    static let vin = "1HGCM82633A004352"

    static func tokens() -> String {
        func hash(_ token: String) -> String { SHA256.hex(Array(token.utf8)) }
        return #", "tokens": [{"name": "ops", "role": "operator", "sha256": "\#(hash(operatorToken))"}, "#
            + #"{"name": "view", "role": "viewer", "sha256": "\#(hash(viewerToken))"}, "#
            + #"{"name": "tracker", "role": "operator", "scopes": ["positions"], "sha256": "\#(hash(trackerToken))"}]"#
    }

    /// Screenshots go here when `TG_CONSOLE_SCREENSHOTS` names a folder (`make console-screenshots`).
    static let screenshots = ProcessInfo.processInfo.environment["TG_CONSOLE_SCREENSHOTS"]

    struct Setup {
        let scratch: Scratch
        let broker: Broker
        let gateway: GatewayProcess
        let publisher: Publisher
        let traffic: ChildProcess
        let browser: Chromium
        var base: String { "http://127.0.0.1:\(gateway.httpPort)" }

        func tearDown() {
            _ = traffic.stop(signal: SIGKILL)
            gateway.stop()
        }
    }

    static func setUp() throws -> Setup {
        let scratch = try Scratch()
        let broker = try Broker(scratch: scratch)
        let gateway = try GatewayProcess(
            scratch: scratch, brokerPort: broker.port,
            extra: #""sensors": {"\#(gauge)": {"lat": 3.1390, "lon": 101.6869, "radius_m": 400}},"#
                + #""alerts": {"water": {"warning_cm": 100, "alarm_cm": 200, "dwell_s": 0}},"#,
            http: tokens())
        try gateway.start()
        let publisher = try Publisher(port: broker.port)
        // Background traffic from a small simulated fleet, as on a street.
        let traffic = try ChildProcess(
            name: "gwsim", executable: try binary("gwsim"),
            arguments: [
                "--port", String(broker.port), "--vehicles", "12", "--sensors", "4", "--rate", "40", "--messages",
                "1000000", "--gps-every", "3", "--center", "3.1390,101.6869", "--quiet",
            ],
            logPath: scratch.file("gwsim.log"))
        let browser = try Chromium(scratch: scratch)
        return Setup(
            scratch: scratch, broker: broker, gateway: gateway, publisher: publisher, traffic: traffic,
            browser: browser)
    }

    static func signIn(_ browser: Chromium, base: String, token: String) throws {
        try browser.navigate("\(base)/console")
        try browser.wait(for: "the login form", "!document.getElementById('login').hidden")
        try browser.evaluate(
            """
            (() => { document.getElementById('token').value = \(JSONValue.string(token).serialized());
                     document.getElementById('login').requestSubmit(); return true; })()
            """)
    }

    static func show(_ browser: Chromium, _ view: String, until condition: String) throws {
        try browser.evaluate("location.hash = '\(view)'")
        try browser.wait(for: "the \(view) view", condition)
    }

    static func capture(_ browser: Chromium, _ name: String) throws {
        guard let folder = screenshots else { return }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try browser.screenshot(to: folder + "/console-\(name).png")
    }

    /// Sign in, every view, a gauge to alarm, the map's geometry, no console error and no
    /// policy violation anywhere.
    @Test func anOperatorSeesEveryViewAndAGaugeInAlarmWithinSeconds() async throws {
        let setup = try Self.setUp()
        defer { setup.tearDown() }
        let browser = setup.browser
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // The last six hours of the gauge, every 5 minutes: a slow rise after rain.
        try setup.publisher.stream(count: 72) { index in
            let level = 30 + Double(index * index) / 80
            return (
                "v1/water/\(Self.gauge)/level",
                #"{"ts":\#(now - Int64(72 - index) * 300_000),"seq":\#(index + 1),"level_cm":\#(level),"battery_v":3.9}"#
            )
        }
        // 300 m north-east of the gauge (211 m north, 211 m east), inside its 400 m circle.
        try await setup.publisher.send(
            "v1/obd/\(Self.vin)/gps",
            #"{"ts":\#(now),"seq":1,"lat":3.1409,"lon":101.6888,"speed_kmh":12,"heading_deg":45}"#)
        try waitFor("the gauge and the vehicle stored") {
            try setup.gateway.count("SELECT count(*) FROM readings_v WHERE device IN ('\(Self.gauge)', '\(Self.vin)')")
                >= 72 * 2 + 3
        }

        // The page itself: a strict policy, and nothing inline for it to forbid.
        let page = try #require(
            try rawRequest(port: setup.gateway.httpPort, "GET /console HTTP/1.1\r\nHost: gw\r\n\r\n"))
        #expect(page.status == 200)
        #expect(page.headers["content-security-policy"]?.contains("script-src 'self'") == true)
        #expect(!page.text.contains("<script>") && !page.text.contains("style="))
        let root = try #require(try rawRequest(port: setup.gateway.httpPort, "GET / HTTP/1.1\r\nHost: gw\r\n\r\n"))
        #expect(root.status == 302 && root.headers["location"] == "/console")
        let script = try #require(
            try rawRequest(port: setup.gateway.httpPort, "GET /console/app.js HTTP/1.1\r\nHost: gw\r\n\r\n"))
        #expect(script.status == 200 && script.headers["content-type"]?.hasPrefix("text/javascript") == true)
        #expect(!script.text.contains("innerHTML"), "the page builds its DOM with textContent only")
        let missing = try #require(
            try rawRequest(port: setup.gateway.httpPort, "GET /console/secret.txt HTTP/1.1\r\nHost: gw\r\n\r\n"))
        #expect(missing.status == 404)

        // A wrong token gets the login form back, with the reason.
        try Self.signIn(browser, base: setup.base, token: "not-a-token")
        try browser.wait(
            for: "the refusal",
            "!document.getElementById('login').hidden && document.getElementById('login-error').textContent.includes('refused')"
        )
        #expect(try browser.evaluate("sessionStorage.length") == .int(0))

        try Self.signIn(browser, base: setup.base, token: Self.trackerToken)
        try browser.wait(for: "the health view", "document.querySelector('#view .cards .card')")
        #expect(try browser.evaluate("document.getElementById('nav-ota').hidden") == .bool(false))
        #expect(try browser.evaluate("location.href.includes('token')") == .bool(false))
        #expect(try browser.evaluate("document.getElementById('status').textContent") == .string("ok"))
        try Self.capture(browser, "health")

        try Self.show(
            browser, "#flood",
            until: "document.querySelector('.gauge-card[data-device=\"\(Self.gauge)\"] svg polyline')")
        #expect(
            try browser.evaluate(
                "document.querySelector('.gauge-card[data-device=\"\(Self.gauge)\"]').dataset.state")
                == .string("normal"))
        // Now the gauge floods: the page shows the alarm by itself within a few seconds.
        try await setup.publisher.send(
            "v1/water/\(Self.gauge)/level", #"{"ts":\#(now + 1),"seq":73,"level_cm":240,"battery_v":3.9}"#)
        let raised = Date()
        try browser.wait(
            for: "the alarm", seconds: 10,
            "document.querySelector('.gauge-card[data-device=\"\(Self.gauge)\"]')?.dataset.state === 'alarm'")
        let seconds = Date().timeIntervalSince(raised)
        print("console: the alarm showed \(String(format: "%.1f", seconds)) s after the reading was published")
        #expect(seconds < 8, "the alarm took \(seconds) s to show")
        #expect(try browser.evaluate("document.querySelectorAll('#alerts tr.alarm').length").number ?? 0 >= 1)
        #expect(try browser.evaluate("Boolean(document.querySelector('[data-threshold=alarm]'))") == .bool(true))
        try Self.capture(browser, "flood")

        // The map: the vehicle north-east of the gauge (up and to the right), inside its circle.
        try Self.show(browser, "#map", until: "document.querySelector('svg.map [data-device=\"\(Self.vin)\"]')")
        let geometry = try browser.evaluate(
            """
            (() => { const g = document.querySelector('svg.map circle.gauge[data-device="\(Self.gauge)"]');
                     const v = document.querySelector('svg.map .vehicle[data-device="\(Self.vin)"]');
                     return { gx: +g.dataset.x, gy: +g.dataset.y, vx: +v.dataset.x, vy: +v.dataset.y,
                              advised: v.classList.contains('advised') }; })()
            """)
        let (gx, gy) = (geometry["gx"]?.number ?? 0, geometry["gy"]?.number ?? 0)
        let (vx, vy) = (geometry["vx"]?.number ?? 0, geometry["vy"]?.number ?? 0)
        #expect(vx > gx && vy < gy, "vehicle at (\(vx), \(vy)), gauge at (\(gx), \(gy))")
        // 211 m north and 211 m east: the same scale both ways (the bearing is not distorted).
        #expect(abs((gy - vy) / (vx - gx) - 1) < 0.05, "north/east on screen: \((gy - vy) / (vx - gx))")
        #expect(geometry["advised"] == .bool(true), "a vehicle inside an alarm circle is marked advised")
        try Self.capture(browser, "map")

        try Self.show(browser, "#devices", until: "document.querySelectorAll('#devices tbody tr').length >= 3")
        try browser.evaluate(
            "(() => { const s = document.getElementById('search'); s.value = '\(Self.gauge)'; s.dispatchEvent(new Event('input')); return true; })()"
        )
        try browser.wait(for: "the search", "document.querySelectorAll('#devices tbody tr').length === 1")
        try Self.capture(browser, "devices")
        try browser.evaluate("document.querySelector('#devices tbody tr').click()")
        try browser.wait(
            for: "the device view",
            "document.querySelectorAll('#latest tr').length >= 1 && document.querySelector('#view svg.chart')")
        try Self.capture(browser, "device")

        try Self.show(browser, "#ota", until: "document.querySelector('#view h1')?.textContent === 'OTA campaigns'")

        // On a phone: the same page, one column.
        try browser.viewport(width: 390, height: 844, mobile: true)
        try Self.show(browser, "#flood", until: "document.querySelector('.gauge-card')")
        try Self.capture(browser, "phone-flood")
        try Self.show(browser, "#health", until: "document.querySelector('#view .cards .card')")
        try Self.capture(browser, "phone-health")

        // The helpers, as the page runs them.
        #expect(
            try browser.evaluate("consoleInternals.forecastText({status: 'rising', minutes_to_alarm: 19.6})")
                == .string("alarm in ~20 min"))
        #expect(try browser.evaluate("consoleInternals.forecastText({status: 'steady'})") == .string("steady"))
        #expect(
            try browser.evaluate("consoleInternals.forecastText({status: 'rising', minutes_to_alarm: 3}, 'alarm')")
                == .string("in alarm, still rising"))
        #expect(try browser.evaluate("consoleInternals.duration(7200)") == .string("2 h"))
        #expect(try browser.evaluate("consoleInternals.duration(600)") == .string("10 min"))
        #expect(try browser.evaluate("consoleInternals.bytes(1536)") == .string("1.5 KiB"))

        try browser.send("Runtime.evaluate", [("expression", .string("1"))])
        #expect(browser.problems.isEmpty, "\(browser.problems)")
    }

    /// A viewer without the positions scope: no OTA tab or controls, and no vehicle on the map.
    @Test func aViewerSeesNoOTAControlsAndNoVehicleTracks() async throws {
        let setup = try Self.setUp()
        defer { setup.tearDown() }
        let browser = setup.browser
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await setup.publisher.send(
            "v1/obd/\(Self.vin)/gps", #"{"ts":\#(now),"seq":1,"lat":3.1409,"lon":101.6888,"speed_kmh":12}"#)
        try await setup.publisher.send("v1/water/\(Self.gauge)/level", #"{"ts":\#(now),"seq":1,"level_cm":40}"#)
        try waitFor("the vehicle stored") {
            try setup.gateway.count("SELECT count(*) FROM readings_v WHERE device = '\(Self.vin)'") >= 2
        }
        try Self.signIn(browser, base: setup.base, token: Self.viewerToken)
        try browser.wait(for: "the health view", "document.querySelector('#view .cards .card')")
        #expect(try browser.evaluate("document.getElementById('nav-ota').hidden") == .bool(true))
        #expect(try browser.evaluate("document.body.dataset.role") == .string("viewer"))
        try Self.show(browser, "#map", until: "document.querySelector('svg.map circle.gauge')")
        #expect(try browser.evaluate("document.querySelectorAll('svg.map .vehicle').length") == .int(0))
        try Self.show(browser, "#ota", until: "document.querySelector('#view p')")
        #expect(try browser.evaluate("document.querySelectorAll('#view button').length") == .int(0))
        // Signing out forgets the token.
        try browser.evaluate("document.getElementById('signout').click()")
        try browser.wait(for: "the login form", "!document.getElementById('login').hidden")
        #expect(try browser.evaluate("sessionStorage.length") == .int(0))
        try browser.send("Runtime.evaluate", [("expression", .string("1"))])
        #expect(browser.problems.isEmpty, "\(browser.problems)")
        // The check above can fail: an injected inline script is refused by the policy, and
        // the refusal is seen.
        try browser.evaluate(
            "(() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s); return true; })()"
        )
        #expect(try browser.evaluate("window.injected === undefined") == .bool(true))
        try browser.wait("the policy's refusal reported") {
            try browser.send("Runtime.evaluate", [("expression", .string("1"))])
            return browser.problems.contains { $0.contains("Content Security Policy") }
        }
    }

    /// The OTA view with a real campaign (pushed with gwctl to gwsim vehicles, held outside its
    /// install window so it stays running): pause, resume, and cancel with its second click,
    /// each through the API, each shown by the page.
    @Test func anOperatorPausesResumesAndCancelsACampaign() throws {
        let fixture = try OTATests.Fixture()
        defer { fixture.gateway.stop() }
        let (v1, v2, _) = try OTATests.images(in: fixture, size: 64 * 1024)
        try fixture.fleet(3, firmware: v1)
        try fixture.waitForVehicles(3)
        let hour = Calendar.current.component(.hour, from: Date())
        let window = String(format: "%02d:00-%02d:00", (hour + 2) % 24, (hour + 3) % 24)
        let push = try fixture.gwctl([
            "ota", "push", v2, "--version", "1.1.0", "--counter", "2", "--hw", "tgu-1", "--key",
            fixture.keyPath + ".key", "--all", "--window", window,
        ])
        #expect(push.status == 0, "\(push.output)")
        try fixture.waitForCampaign(1, ["running"])
        let browser = try Chromium(scratch: fixture.scratch)
        try Self.signIn(browser, base: "http://127.0.0.1:\(fixture.gateway.httpPort)", token: OTATests.operatorToken)
        try browser.wait(for: "the health view", "document.querySelector('#view .cards .card')")
        let card = "document.querySelector('.campaign[data-campaign=\"1\"]')"
        try Self.show(browser, "#ota", until: "\(card)?.querySelector('.pill')?.textContent === 'running'")
        #expect(try browser.evaluate("\(card).querySelector('.resume').disabled") == .bool(true))
        try Self.capture(browser, "ota")
        try browser.evaluate("\(card).querySelector('.pause').click()")
        try browser.wait(for: "paused", "\(card)?.querySelector('.pill')?.textContent === 'paused'")
        #expect(try fixture.campaign(1)["state"] == .string("paused"))
        try browser.evaluate("\(card).querySelector('.resume').click()")
        try browser.wait(for: "running again", "\(card)?.querySelector('.pill')?.textContent === 'running'")
        // Cancel needs a second click: the first only arms it.
        try browser.evaluate("\(card).querySelector('.cancel').click()")
        try browser.wait(for: "the armed cancel", "\(card)?.querySelector('.cancel')?.textContent === 'Confirm cancel'")
        #expect(try fixture.campaign(1)["state"] == .string("running"))
        try browser.evaluate("\(card).querySelector('.cancel').click()")
        try browser.wait(for: "canceled", "\(card)?.querySelector('.pill')?.textContent === 'canceled'")
        #expect(try fixture.campaign(1)["state"] == .string("canceled"))
        try browser.send("Runtime.evaluate", [("expression", .string("1"))])
        #expect(browser.problems.isEmpty, "\(browser.problems)")
    }
}
