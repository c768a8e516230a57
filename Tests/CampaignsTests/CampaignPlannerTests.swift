import Campaigns
import OTA
import Telemetry
import Testing

/// The rollout state machine, driven with reports, block requests and ticks; no I/O.
@Suite struct CampaignPlannerTests {
    static let release = ReleaseInfo(hardwareID: "tgu-1", counter: 2, sha256: String(repeating: "b", count: 64), deltaBases: [String(repeating: "a", count: 64)])
    static let installedOld = InstalledFirmware(hardwareID: "tgu-1", version: "1.0.0", counter: 1, sha256: String(repeating: "a", count: 64))

    static func vin(_ index: Int) -> VIN {
        let number = String(index)
        return VIN("1TGSV" + String(repeating: "0", count: 12 - number.count) + number)!
    }

    func planner(vehicles: Int, settings: CampaignSettings = CampaignSettings(), slots: Int = 100, id: UInt32 = 1)
        -> CampaignPlanner
    {
        var planner = CampaignPlanner(maxConcurrentTransfers: slots)
        let runs = (1...vehicles).map { VehicleRun(vin: Self.vin($0), order: $0 - 1) }
        planner.add(
            campaign: Campaign(
                id: id, manifestID: 1, hardwareID: "tgu-1", targetsAll: false, settings: settings, state: .scheduled,
                createdMs: 0, updatedMs: 0),
            release: Self.release, runs: runs)
        return planner
    }

    func offers(_ actions: [PlannerAction]) -> [VIN] {
        actions.compactMap { if case .offer(_, let vin, _) = $0 { vin } else { nil } }
    }

    func install(_ planner: inout CampaignPlanner, _ vin: VIN, now: Int64 = 1_000) -> [PlannerAction] {
        planner.report(vin: vin, VehicleReport(campaign: 1, state: .installed), nowMs: now)
    }

    @Test func wavesOpenOnlyAfterTheSuccessShare() {
        var settings = CampaignSettings()
        settings.waves = [10, 50, 100]
        var planner = planner(vehicles: 20, settings: settings)
        // Wave 1 is 10 % of 20 = 2 vehicles.
        let first = offers(planner.tick(nowMs: 0, minuteOfDay: 0))
        #expect(first == [Self.vin(1), Self.vin(2)])
        #expect(planner.entries[1]?.campaign.state == .running)
        _ = install(&planner, Self.vin(1))
        #expect(offers(planner.tick(nowMs: 1_000, minuteOfDay: 0)).isEmpty, "1 of 2 is below 95 %")
        _ = install(&planner, Self.vin(2))
        #expect(planner.entries[1]?.campaign.wave == 1)
        #expect(offers(planner.tick(nowMs: 2_000, minuteOfDay: 0)) == (3...10).map(Self.vin))
        for index in 3...10 { _ = install(&planner, Self.vin(index)) }
        #expect(offers(planner.tick(nowMs: 3_000, minuteOfDay: 0)) == (11...20).map(Self.vin))
        for index in 11...20 { _ = install(&planner, Self.vin(index)) }
        #expect(planner.entries[1]?.campaign.state == .completed)
    }

    @Test func deltaOnlyForVehiclesOnTheBaseImage() {
        var planner = planner(vehicles: 2)
        _ = planner.report(vin: Self.vin(1), VehicleReport(campaign: 0, state: .idle, installed: Self.installedOld), nowMs: 0)
        let actions = planner.tick(nowMs: 0, minuteOfDay: 0)
        #expect(actions.contains(.offer(campaign: 1, vin: Self.vin(1), file: .delta)))
        #expect(actions.contains(.offer(campaign: 1, vin: Self.vin(2), file: .full)))
    }

    @Test func abortsWhenFailuresPassTheThreshold() {
        var settings = CampaignSettings()
        settings.retries = 0
        settings.abortFailurePct = 20
        settings.abortMinFinished = 4
        var planner = planner(vehicles: 10, settings: settings)
        _ = planner.tick(nowMs: 0, minuteOfDay: 0)
        _ = install(&planner, Self.vin(1))
        _ = install(&planner, Self.vin(2))
        _ = install(&planner, Self.vin(3))
        // 1 of 4 finished failed: 25 % > 20 %.
        let actions = planner.report(
            vin: Self.vin(4), VehicleReport(campaign: 1, state: .failed, reason: "install_failed"), nowMs: 2_000)
        #expect(planner.entries[1]?.campaign.state == .aborted)
        #expect(actions.contains(.command(vin: Self.vin(5), campaign: 1, verb: .cancel)))
        #expect(actions.contains(.clearOffer(vin: Self.vin(5))))
        #expect(planner.run(campaign: 1, vin: Self.vin(10))?.state == .canceled)
        #expect(offers(planner.tick(nowMs: 3_000, minuteOfDay: 0)).isEmpty)
    }

    @Test func failedInstallsAreRetriedRejectionsAreNot() {
        var settings = CampaignSettings()
        settings.retries = 1
        settings.abortFailurePct = 100
        var planner = planner(vehicles: 2, settings: settings)
        _ = planner.tick(nowMs: 0, minuteOfDay: 0)
        _ = planner.report(vin: Self.vin(1), VehicleReport(campaign: 1, state: .failed, reason: "install_failed"), nowMs: 10)
        #expect(planner.run(campaign: 1, vin: Self.vin(1))?.state == .queued)
        #expect(offers(planner.tick(nowMs: 20, minuteOfDay: 0)) == [Self.vin(1)])
        _ = planner.report(vin: Self.vin(1), VehicleReport(campaign: 1, state: .failed, reason: "install_failed"), nowMs: 30)
        #expect(planner.run(campaign: 1, vin: Self.vin(1))?.state == .failed)
        _ = planner.report(vin: Self.vin(2), VehicleReport(campaign: 1, state: .rejected, reason: "bad_signature"), nowMs: 40)
        #expect(planner.run(campaign: 1, vin: Self.vin(2))?.state == .rejected)
        #expect(planner.run(campaign: 1, vin: Self.vin(2))?.reason == "bad_signature")
        #expect(planner.entries[1]?.campaign.state == .completed)
    }

    @Test func silentVehiclesTimeOutThenGiveUp() {
        var settings = CampaignSettings()
        settings.vehicleTimeoutSeconds = 60
        settings.retries = 1
        settings.abortFailurePct = 100
        var planner = planner(vehicles: 1, settings: settings)
        _ = planner.tick(nowMs: 0, minuteOfDay: 0)
        // A block request is life: no timeout.
        _ = planner.blockRequest(vin: Self.vin(1), campaign: 1, file: .full, nowMs: 50_000)
        #expect(planner.run(campaign: 1, vin: Self.vin(1))?.state == .downloading)
        _ = planner.tick(nowMs: 100_000, minuteOfDay: 0)
        #expect(planner.run(campaign: 1, vin: Self.vin(1))?.state == .downloading)
        let actions = planner.tick(nowMs: 111_000, minuteOfDay: 0)
        #expect(actions.contains(.clearOffer(vin: Self.vin(1))))
        // Queued again and offered in the same tick (second attempt).
        #expect(offers(actions) == [Self.vin(1)])
        _ = planner.tick(nowMs: 200_000, minuteOfDay: 0)
        #expect(planner.run(campaign: 1, vin: Self.vin(1))?.state == .timedOut)
        #expect(planner.entries[1]?.campaign.state == .completed)
    }

    @Test func transferSlotsAreCapped() {
        var planner = planner(vehicles: 10, slots: 3)
        #expect(offers(planner.tick(nowMs: 0, minuteOfDay: 0)).count == 3)
        #expect(offers(planner.tick(nowMs: 1, minuteOfDay: 0)).isEmpty)
        // Downloaded frees the slot (no more bytes), installing keeps it free.
        _ = planner.report(vin: Self.vin(1), VehicleReport(campaign: 1, state: .downloaded), nowMs: 2)
        #expect(offers(planner.tick(nowMs: 3, minuteOfDay: 0)) == [Self.vin(4)])
        #expect(planner.transfersInProgress == 3)
    }

    @Test func installWindowGatesNewOffers() {
        var settings = CampaignSettings()
        settings.window = InstallWindow("23:00-02:00")
        var planner = planner(vehicles: 2, settings: settings)
        #expect(offers(planner.tick(nowMs: 0, minuteOfDay: 12 * 60)).isEmpty)
        #expect(offers(planner.tick(nowMs: 1, minuteOfDay: 60)).count == 2)
        #expect(InstallWindow("01:00-05:00")?.contains(minuteOfDay: 4 * 60 + 59) == true)
        #expect(InstallWindow("01:00-05:00")?.contains(minuteOfDay: 5 * 60) == false)
        #expect(InstallWindow("1:00-05:00") == nil)
        #expect(InstallWindow("05:00-05:00") == nil)
    }

    @Test func pauseResumeCancel() throws {
        var planner = planner(vehicles: 3)
        _ = planner.tick(nowMs: 0, minuteOfDay: 0)
        let paused = try planner.pause(1, nowMs: 10)
        #expect(paused.filter { if case .command(_, _, .pause) = $0 { true } else { false } }.count == 3)
        #expect(planner.blockRequest(vin: Self.vin(1), campaign: 1, file: .full, nowMs: 11).serve == false)
        #expect(throws: CampaignPlanner.ControlError.self) { try planner.pause(1, nowMs: 12) }
        // Paused for longer than the timeout: resuming does not time anyone out.
        _ = try planner.resume(1, nowMs: 10_000_000)
        _ = planner.tick(nowMs: 10_000_001, minuteOfDay: 0)
        #expect(planner.run(campaign: 1, vin: Self.vin(1))?.state == .offered)
        #expect(planner.blockRequest(vin: Self.vin(1), campaign: 1, file: .full, nowMs: 10_000_002).serve)
        #expect(planner.blockRequest(vin: Self.vin(1), campaign: 1, file: .delta, nowMs: 10_000_002).serve == false)
        _ = try planner.cancel(1, nowMs: 10_000_003)
        #expect(planner.entries[1]?.campaign.state == .canceled)
        #expect(planner.entries[1]?.runs.allSatisfy { $0.state == .canceled } == true)
        #expect(throws: CampaignPlanner.ControlError.self) { try planner.resume(1, nowMs: 0) }
        // A vehicle still downloading for the ended campaign is told to stop.
        let late = planner.report(vin: Self.vin(2), VehicleReport(campaign: 1, state: .downloading), nowMs: 10_000_004)
        #expect(late == [.command(vin: Self.vin(2), campaign: 1, verb: .cancel)])
    }

    @Test func vehiclesAlreadyOnTheReleaseAreDoneAtOnce() {
        var planner = planner(vehicles: 1)
        _ = planner.report(
            vin: Self.vin(1),
            VehicleReport(
                campaign: 0, state: .idle,
                installed: InstalledFirmware(hardwareID: "tgu-1", version: "2.0.0", counter: 2, sha256: Self.release.sha256)),
            nowMs: 0)
        #expect(offers(planner.tick(nowMs: 1, minuteOfDay: 0)).isEmpty)
        #expect(planner.entries[1]?.campaign.state == .completed || planner.run(campaign: 1, vin: Self.vin(1))?.state == .installed)
    }

    @Test func allVehiclesCampaignsTakeLateArrivals() {
        var planner = CampaignPlanner(maxConcurrentTransfers: 10)
        planner.add(
            campaign: Campaign(
                id: 7, manifestID: 1, hardwareID: "tgu-1", targetsAll: true, settings: CampaignSettings(),
                createdMs: 0, updatedMs: 0),
            release: Self.release, runs: [])
        _ = planner.report(vin: Self.vin(9), VehicleReport(campaign: 0, state: .idle, installed: Self.installedOld), nowMs: 0)
        var other = Self.installedOld
        other.hardwareID = "tgu-2"
        _ = planner.report(vin: Self.vin(8), VehicleReport(campaign: 0, state: .idle, installed: other), nowMs: 0)
        #expect(planner.entries[7]?.runs.map(\.vin) == [Self.vin(9)])
        #expect(planner.tick(nowMs: 1, minuteOfDay: 0).contains(.offer(campaign: 7, vin: Self.vin(9), file: .delta)))
    }

    @Test func oneOfferPerVehicleAcrossCampaigns() {
        var planner = planner(vehicles: 1)
        planner.add(
            campaign: Campaign(
                id: 2, manifestID: 2, hardwareID: "tgu-1", targetsAll: false, settings: CampaignSettings(),
                createdMs: 0, updatedMs: 0),
            release: Self.release, runs: [VehicleRun(vin: Self.vin(1), order: 0)])
        let actions = planner.tick(nowMs: 0, minuteOfDay: 0)
        #expect(offers(actions) == [Self.vin(1)])
    }

    @Test func settingsValidation() throws {
        var settings = CampaignSettings()
        settings.waves = [5, 25, 100]
        #expect(settings.problem() == nil)
        settings.waves = [25, 5, 100]
        #expect(settings.problem() != nil)
        settings.waves = [5, 25]
        #expect(settings.problem()?.contains("100") == true)
    }
}
