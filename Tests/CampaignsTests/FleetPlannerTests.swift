import Campaigns
import OTA
import Telemetry
import Testing

/// A gateway's part of a fleet campaign: offers only to vehicles that are here, a silent
/// vehicle counts as gone (not failed), and waves, abort and completion follow the fleet tally.
@Suite struct FleetPlannerTests {
    static let installedOld = CampaignPlannerTests.installedOld

    func planner(vehicles: Int, settings: CampaignSettings = CampaignSettings()) -> CampaignPlanner {
        var planner = CampaignPlanner(maxConcurrentTransfers: 100)
        let runs = (1...vehicles).map { VehicleRun(vin: CampaignPlannerTests.vin($0), order: $0 - 1) }
        planner.add(
            campaign: Campaign(
                id: 1, manifestID: 1, hardwareID: "tgu-1", targetsAll: false, settings: settings, state: .scheduled,
                createdMs: 0, updatedMs: 0, fleet: true),
            release: CampaignPlannerTests.release, runs: runs)
        return planner
    }

    func arrive(_ planner: inout CampaignPlanner, _ index: Int, now: Int64 = 0) {
        _ = planner.report(
            vin: CampaignPlannerTests.vin(index),
            VehicleReport(campaign: 0, state: .idle, installed: Self.installedOld),
            nowMs: now)
    }

    func offers(_ actions: [PlannerAction]) -> [VIN] {
        actions.compactMap { if case .offer(_, let vin, _) = $0 { vin } else { nil } }
    }

    static func tally(targets: Int, installed: Int, failures: Int = 0, waves: [(Int, Int, Int)]) -> FleetTally {
        FleetTally(
            targets: targets, finished: installed + failures, failures: failures, installed: installed,
            terminal: installed + failures, waves: waves.map { .init(size: $0.0, installed: $0.1, terminal: $0.2) })
    }

    @Test func offersOnlyToVehiclesThatAreHere() {
        var planner = planner(vehicles: 4)
        arrive(&planner, 2)
        #expect(offers(planner.tick(nowMs: 0, minuteOfDay: 0)) == [CampaignPlannerTests.vin(2)])
        arrive(&planner, 4, now: 500)
        #expect(offers(planner.tick(nowMs: 1_000, minuteOfDay: 0)) == [CampaignPlannerTests.vin(4)])
    }

    @Test func aSilentVehicleLeftAndIsOfferedAgainOnlyWhenItComesBack() {
        var settings = CampaignSettings()
        settings.vehicleTimeoutSeconds = 10
        settings.retries = 0
        var planner = planner(vehicles: 1, settings: settings)
        arrive(&planner, 1)
        #expect(offers(planner.tick(nowMs: 0, minuteOfDay: 0)).count == 1)
        // Silent past the timeout: not failed (retries is 0), not offered again.
        #expect(offers(planner.tick(nowMs: 11_000, minuteOfDay: 0)).isEmpty)
        let run = planner.run(campaign: 1, vin: CampaignPlannerTests.vin(1))
        #expect(run?.state == .queued)
        #expect(run?.attempts == 0)
        #expect(offers(planner.tick(nowMs: 30_000, minuteOfDay: 0)).isEmpty)
        #expect(planner.entries[1]?.campaign.state == .running)
        arrive(&planner, 1, now: 40_000)
        #expect(offers(planner.tick(nowMs: 40_000, minuteOfDay: 0)) == [CampaignPlannerTests.vin(1)])
    }

    @Test func wavesAbortAndCompletionFollowTheFleetTally() {
        var settings = CampaignSettings()
        settings.waves = [50, 100]
        settings.successPct = 50
        var planner = planner(vehicles: 4, settings: settings)
        for index in 1...4 { arrive(&planner, index) }
        // Wave 1 is vehicles 1-2; all four are here, only two are offered.
        #expect(offers(planner.tick(nowMs: 0, minuteOfDay: 0)).count == 2)
        // Installs here do not move the wave: the fleet's tally does.
        _ = planner.report(vin: CampaignPlannerTests.vin(1), VehicleReport(campaign: 1, state: .installed), nowMs: 100)
        _ = planner.report(vin: CampaignPlannerTests.vin(2), VehicleReport(campaign: 1, state: .installed), nowMs: 100)
        #expect(offers(planner.tick(nowMs: 1_000, minuteOfDay: 0)).isEmpty)
        #expect(planner.entries[1]?.campaign.state == .running, "not complete without the fleet's word")
        _ = planner.apply(
            tally: Self.tally(targets: 8, installed: 2, waves: [(4, 2, 2), (8, 2, 2)]), campaign: 1, nowMs: 2_000)
        #expect(planner.entries[1]?.campaign.wave == 1)
        #expect(offers(planner.tick(nowMs: 2_000, minuteOfDay: 0)).count == 2)
        _ = planner.apply(
            tally: Self.tally(targets: 8, installed: 8, waves: [(4, 4, 4), (8, 8, 8)]), campaign: 1, nowMs: 3_000)
        #expect(planner.entries[1]?.campaign.state == .completed)
    }

    @Test func theFleetsFailuresAbortEveryPart() {
        var settings = CampaignSettings()
        settings.abortFailurePct = 20
        settings.abortMinFinished = 3
        var planner = planner(vehicles: 2, settings: settings)
        arrive(&planner, 1)
        #expect(offers(planner.tick(nowMs: 0, minuteOfDay: 0)).count == 1)
        // Nothing failed here; three failed elsewhere.
        let actions = planner.apply(
            tally: Self.tally(targets: 10, installed: 1, failures: 3, waves: [(10, 1, 4)]), campaign: 1, nowMs: 1_000)
        #expect(planner.entries[1]?.campaign.state == .aborted)
        #expect(planner.entries[1]?.campaign.reason?.hasPrefix("fleet:") == true)
        #expect(actions.contains(.command(vin: CampaignPlannerTests.vin(1), campaign: 1, verb: .cancel)))
    }

    @Test func aLocalCampaignIgnoresTallies() {
        var planner = CampaignPlanner(maxConcurrentTransfers: 10)
        planner.add(
            campaign: Campaign(
                id: 1, manifestID: 1, hardwareID: "tgu-1", targetsAll: false, settings: CampaignSettings(),
                state: .running, createdMs: 0, updatedMs: 0),
            release: CampaignPlannerTests.release, runs: [VehicleRun(vin: CampaignPlannerTests.vin(1), order: 0)])
        #expect(
            planner.apply(tally: Self.tally(targets: 1, installed: 1, waves: [(1, 1, 1)]), campaign: 1, nowMs: 0)
                .isEmpty)
        #expect(planner.entries[1]?.campaign.state == .running)
    }
}
