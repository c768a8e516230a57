public import OTA
public import Telemetry

/// What the planner needs to know about a campaign's release.
public struct ReleaseInfo: Sendable, Equatable {
    public var hardwareID: String
    public var counter: UInt64
    public var sha256: String
    /// Installed images a delta exists for.
    public var deltaBases: Set<String>

    public init(hardwareID: String, counter: UInt64, sha256: String, deltaBases: Set<String>) {
        self.hardwareID = hardwareID
        self.counter = counter
        self.sha256 = sha256
        self.deltaBases = deltaBases
    }
}

/// What the planner asks the service to do. The planner itself does no I/O.
public enum PlannerAction: Sendable, Equatable {
    /// Publish the retained offer for this vehicle.
    case offer(campaign: UInt32, vin: VIN, file: FileKind)
    /// Clear the vehicle's retained offer (empty retained message).
    case clearOffer(vin: VIN)
    case command(vin: VIN, campaign: UInt32, verb: OTACommand.Verb)
    case saveRun(campaign: UInt32, run: VehicleRun)
    case saveCampaign(Campaign)
    case saveInventory(vin: VIN, firmware: InstalledFirmware)
}

/// The rollout logic of every campaign on this gateway: waves, the transfer-slot cap, install
/// windows, timeouts and retries, the abort threshold, pause/resume/cancel. A pure state
/// machine: inputs are reports, block requests, operator commands and clock ticks; outputs
/// are `PlannerAction`s, which `OTAService` turns into MQTT publishes and SQLite writes.
public struct CampaignPlanner: Sendable {
    public struct Entry: Sendable {
        public var campaign: Campaign
        public var release: ReleaseInfo
        public var runs: [VehicleRun]
        var index: [VIN: Int]
        /// The fleet's progress, for a fleet campaign; nil until the depot's first tally.
        public var tally: FleetTally?

        /// Vehicles in waves up to `wave` (cumulative share of the targets, at least one).
        public func size(ofWave wave: Int) -> Int {
            let percent = campaign.settings.waves[min(wave, campaign.settings.waves.count - 1)]
            return min(runs.count, max(1, (runs.count * percent + 99) / 100))
        }

        /// The wave a vehicle belongs to, by its place in the target order.
        public func wave(of run: VehicleRun) -> Int {
            let last = campaign.settings.waves.count - 1
            return (0..<last).first { run.order < size(ofWave: $0) } ?? last
        }
    }

    public private(set) var entries: [UInt32: Entry] = [:]
    public private(set) var inventory: [VIN: InstalledFirmware] = [:]
    /// The campaign each vehicle is offered or transferring in: one offer topic per vehicle.
    public private(set) var activeCampaign: [VIN: UInt32] = [:]
    public var maxConcurrentTransfers: Int

    public init(maxConcurrentTransfers: Int) {
        self.maxConcurrentTransfers = max(1, maxConcurrentTransfers)
    }

    public var transfersInProgress: Int {
        entries.values.reduce(0) { total, entry in
            entry.campaign.state == .running || entry.campaign.state == .paused
                ? total + entry.runs.count(where: \.holdsSlot) : total
        }
    }

    public mutating func load(inventory: [VIN: InstalledFirmware]) {
        self.inventory = inventory
    }

    /// Adds a campaign (new, or loaded at start). Runs must be ordered by `order`.
    public mutating func add(campaign: Campaign, release: ReleaseInfo, runs: [VehicleRun]) {
        var index: [VIN: Int] = [:]
        for (position, run) in runs.enumerated() {
            index[run.vin] = position
            if run.isActive, !campaign.state.isFinal { activeCampaign[run.vin] = campaign.id }
        }
        entries[campaign.id] = Entry(campaign: campaign, release: release, runs: runs, index: index)
    }

    /// Forgets a vehicle (erasure): its runs leave every campaign, as if it had never been a
    /// target (a campaign's counts shrink by it), and its installed firmware is forgotten.
    /// Returns how many records went.
    public mutating func forget(vin: VIN) -> Int {
        var removed = inventory.removeValue(forKey: vin) == nil ? 0 : 1
        activeCampaign.removeValue(forKey: vin)
        for id in entries.keys {
            guard var entry = entries[id], let position = entry.index[vin] else { continue }
            entry.runs.remove(at: position)
            entry.index = Dictionary(uniqueKeysWithValues: entry.runs.enumerated().map { ($1.vin, $0) })
            entries[id] = entry
            removed += 1
        }
        return removed
    }

    public func run(campaign: UInt32, vin: VIN) -> VehicleRun? {
        guard let entry = entries[campaign], let position = entry.index[vin] else { return nil }
        return entry.runs[position]
    }

    // MARK: - Clock

    public mutating func tick(nowMs: Int64, minuteOfDay: Int) -> [PlannerAction] {
        var actions: [PlannerAction] = []
        for id in entries.keys.sorted() {
            guard let state = entries[id]?.campaign.state, state == .running || state == .scheduled else { continue }
            if state == .scheduled { setCampaign(id, .running, reason: nil, nowMs: nowMs, &actions) }
            timeOut(id, nowMs: nowMs, &actions)
            if evaluate(id, nowMs: nowMs, &actions) { continue }
            offer(id, nowMs: nowMs, minuteOfDay: minuteOfDay, &actions)
        }
        return actions
    }

    private mutating func timeOut(_ id: UInt32, nowMs: Int64, _ actions: inout [PlannerAction]) {
        guard let entry = entries[id] else { return }
        let limit = Int64(entry.campaign.settings.vehicleTimeoutSeconds) * 1000
        for position in entry.runs.indices where entry.runs[position].isActive {
            var run = entry.runs[position]
            guard nowMs - run.progressMs > limit else { continue }
            if entry.campaign.fleet {
                // In a fleet, silence means the vehicle drove on: it is not offered here again
                // until it reports here, and the attempt is not counted (it may finish elsewhere).
                run.state = .queued
                run.reason = Self.away
                run.detail = "silent for \(entry.campaign.settings.vehicleTimeoutSeconds) s: left this gateway"
                finishVehicle(run.vin, id: id, &actions)
                save(id, position, run, nowMs: nowMs, &actions)
                continue
            }
            retryOrFail(
                id, position, terminal: .timedOut, reason: "timeout",
                detail:
                    "no status or block request for \(entry.campaign.settings.vehicleTimeoutSeconds) s in state \(run.state.rawValue)",
                nowMs: nowMs, &actions)
        }
    }

    /// Why a fleet campaign's vehicle waits: it was offered here and went quiet.
    static let away = "away"

    /// The depot's newest tally for a fleet campaign: waves, abort and completion follow it.
    public mutating func apply(tally: FleetTally, campaign id: UInt32, nowMs: Int64) -> [PlannerAction] {
        guard let entry = entries[id], entry.campaign.fleet else { return [] }
        entries[id]!.tally = tally
        var actions: [PlannerAction] = []
        if entry.campaign.state == .running { _ = evaluate(id, nowMs: nowMs, &actions) }
        return actions
    }

    /// The counts waves, abort and completion are decided by: this gateway's own runs, or for a
    /// fleet campaign the fleet's tally (nil until the first one arrives).
    private func figures(_ entry: Entry) -> FleetTally? {
        if entry.campaign.fleet { return entry.tally }
        let runs = entry.runs
        let waves = entry.campaign.settings.waves.indices.map { wave in
            let members = runs.prefix(entry.size(ofWave: wave))
            return FleetTally.Wave(
                size: members.count, installed: members.count { $0.state == .installed },
                terminal: members.count { $0.state.isTerminal })
        }
        return FleetTally(
            targets: runs.count, finished: runs.count { $0.state.isTerminal && $0.state != .canceled },
            failures: runs.count { $0.state.isFailure }, installed: runs.count { $0.state == .installed },
            terminal: runs.count { $0.state.isTerminal }, waves: waves)
    }

    /// Waves, abort and completion. True when the campaign has just ended.
    private mutating func evaluate(_ id: UInt32, nowMs: Int64, _ actions: inout [PlannerAction]) -> Bool {
        guard let entry = entries[id], let figures = figures(entry) else { return false }
        let settings = entry.campaign.settings
        let scope = entry.campaign.fleet ? "fleet: " : ""
        if figures.finished >= settings.abortMinFinished,
            figures.failures * 100 > settings.abortFailurePct * figures.finished
        {
            stop(
                id, as: .aborted,
                reason: "\(scope)\(figures.failures) of \(figures.finished) finished vehicles failed, "
                    + "above abort_failure_pct \(settings.abortFailurePct)",
                nowMs: nowMs, &actions)
            return true
        }
        if figures.targets > 0, figures.terminal >= figures.targets {
            setCampaign(
                id, .completed,
                reason: "\(scope)\(figures.installed) of \(figures.targets) installed, \(figures.failures) failed",
                nowMs: nowMs, &actions)
            return true
        }
        var wave = entry.campaign.wave
        while wave < settings.waves.count - 1, wave < figures.waves.count {
            let members = figures.waves[wave]
            if members.installed * 100 >= settings.successPct * members.size {
                wave += 1
                continue
            }
            if members.terminal >= members.size {
                stop(
                    id, as: .aborted,
                    reason: "\(scope)wave \(wave + 1) ended with \(members.installed) of \(members.size) installed, "
                        + "below success_pct \(settings.successPct)",
                    nowMs: nowMs, &actions)
                return true
            }
            break
        }
        if wave != entry.campaign.wave {
            entries[id]!.campaign.wave = wave
            entries[id]!.campaign.updatedMs = nowMs
            actions.append(.saveCampaign(entries[id]!.campaign))
        }
        return false
    }

    private mutating func offer(_ id: UInt32, nowMs: Int64, minuteOfDay: Int, _ actions: inout [PlannerAction]) {
        guard let entry = entries[id] else { return }
        if let window = entry.campaign.settings.window, !window.contains(minuteOfDay: minuteOfDay) { return }
        var free = maxConcurrentTransfers - transfersInProgress
        guard free > 0 else { return }
        let size = entry.size(ofWave: entry.campaign.wave)
        for position in 0..<size where entry.runs[position].state == .queued {
            guard free > 0 else { break }
            var run = entry.runs[position]
            if activeCampaign[run.vin] != nil { continue }
            let known = inventory[run.vin]
            // A fleet campaign offers only to vehicles that came here and did not leave again.
            if entry.campaign.fleet, known == nil || run.reason == Self.away { continue }
            if let known, known.sha256 == entry.release.sha256 {
                run.state = .installed
                run.detail = "already running this image"
                save(id, position, run, nowMs: nowMs, &actions)
                continue
            }
            run.file = known.map { entry.release.deltaBases.contains($0.sha256) } == true ? .delta : .full
            run.state = .offered
            run.progressMs = nowMs
            run.blocksDone = 0
            activeCampaign[run.vin] = id
            save(id, position, run, nowMs: nowMs, &actions)
            actions.append(.offer(campaign: id, vin: run.vin, file: run.file!))
            free -= 1
        }
    }

    // MARK: - Vehicles

    /// A status message from a vehicle.
    public mutating func report(vin: VIN, _ report: VehicleReport, nowMs: Int64) -> [PlannerAction] {
        var actions: [PlannerAction] = []
        returned(vin: vin, nowMs: nowMs, &actions)
        if let installed = report.installed, inventory[vin] != installed {
            inventory[vin] = installed
            actions.append(.saveInventory(vin: vin, firmware: installed))
            join(vin: vin, hardwareID: installed.hardwareID, nowMs: nowMs, &actions)
        }
        guard report.campaign != 0, let entry = entries[report.campaign], let position = entry.index[vin] else {
            return actions
        }
        var run = entry.runs[position]
        guard !run.state.isTerminal, !entry.campaign.state.isFinal else {
            // A vehicle still working on a campaign that is over for it: tell it to stop.
            if report.state != .installed, report.state != .canceled, report.state != .rejected, report.state != .failed
            {
                actions.append(.command(vin: vin, campaign: report.campaign, verb: .cancel))
            }
            return actions
        }
        run.progressMs = nowMs
        if let done = report.blocksDone { run.blocksDone = done }
        if let total = report.blocksTotal { run.blocksTotal = total }
        if let fetched = report.fetchedBlocks { run.fetchedBlocks = fetched }
        switch report.state {
        case .idle, .paused:
            break
        case .downloading:
            if run.state == .offered { run.state = .downloading }
        case .downloaded:
            if run.isActive { run.state = .downloaded }
        case .installing:
            if run.isActive { run.state = .installing }
        case .installed:
            run.state = .installed
            run.reason = nil
            run.detail = report.detail
            finishVehicle(vin, id: report.campaign, &actions)
        case .rejected:
            run.state = .rejected
            run.reason = report.reason ?? "unspecified"
            run.detail = report.detail
            finishVehicle(vin, id: report.campaign, &actions)
        case .canceled:
            run.state = .canceled
            run.reason = report.reason
            finishVehicle(vin, id: report.campaign, &actions)
        case .failed:
            entries[report.campaign]!.runs[position] = run
            retryOrFail(
                report.campaign, position, terminal: .failed, reason: report.reason ?? "install_failed",
                detail: report.detail, nowMs: nowMs, &actions)
            if entries[report.campaign]!.runs[position].state.isTerminal,
                entries[report.campaign]!.campaign.state == .running
            {
                _ = evaluate(report.campaign, nowMs: nowMs, &actions)
            }
            return actions
        }
        save(report.campaign, position, run, nowMs: nowMs, &actions)
        if run.state.isTerminal, entries[report.campaign]!.campaign.state == .running {
            _ = evaluate(report.campaign, nowMs: nowMs, &actions)
        }
        return actions
    }

    /// Whether to serve a block request; the first one moves the vehicle to `downloading`.
    public mutating func blockRequest(
        vin: VIN, campaign id: UInt32, file: FileKind, nowMs: Int64
    ) -> (serve: Bool, actions: [PlannerAction]) {
        guard let entry = entries[id], entry.campaign.state == .running, let position = entry.index[vin] else {
            return (false, [])
        }
        var run = entry.runs[position]
        guard run.holdsSlot || run.state == .downloaded, run.file == file else { return (false, []) }
        var actions: [PlannerAction] = []
        if run.state == .offered {
            run.state = .downloading
            run.progressMs = nowMs
            save(id, position, run, nowMs: nowMs, &actions)
        } else {
            // Progress only in memory: a write per request would cost more than the transfer.
            entries[id]!.runs[position].progressMs = nowMs
        }
        return (true, actions)
    }

    /// The file actually offered, when it differs from the planner's choice (the vehicle's
    /// reported image changed between the decision and the offer): block requests must match it.
    public mutating func recordOfferedFile(campaign id: UInt32, vin: VIN, file: FileKind) {
        guard let position = entries[id]?.index[vin] else { return }
        entries[id]!.runs[position].file = file
    }

    /// A vehicle that left during a fleet campaign reported here again: it may be offered.
    private mutating func returned(vin: VIN, nowMs: Int64, _ actions: inout [PlannerAction]) {
        for id in entries.keys.sorted() {
            guard let entry = entries[id], entry.campaign.fleet, !entry.campaign.state.isFinal,
                let position = entry.index[vin], entry.runs[position].state == .queued,
                entry.runs[position].reason == Self.away
            else { continue }
            var run = entry.runs[position]
            run.reason = nil
            run.detail = nil
            save(id, position, run, nowMs: nowMs, &actions)
        }
    }

    /// A vehicle of the campaign's hardware reported: it joins a running "all vehicles"
    /// campaign, in the last wave.
    private mutating func join(vin: VIN, hardwareID: String, nowMs: Int64, _ actions: inout [PlannerAction]) {
        for id in entries.keys.sorted() {
            guard var entry = entries[id], entry.campaign.targetsAll, !entry.campaign.state.isFinal,
                entry.release.hardwareID == hardwareID, entry.index[vin] == nil
            else { continue }
            let run = VehicleRun(vin: vin, order: entry.runs.count, updatedMs: nowMs)
            entry.index[vin] = entry.runs.count
            entry.runs.append(run)
            entries[id] = entry
            actions.append(.saveRun(campaign: id, run: run))
        }
    }

    private mutating func retryOrFail(
        _ id: UInt32, _ position: Int, terminal: VehicleState, reason: String, detail: String?, nowMs: Int64,
        _ actions: inout [PlannerAction]
    ) {
        guard let entry = entries[id] else { return }
        var run = entry.runs[position]
        run.attempts += 1
        run.reason = reason
        run.detail = detail
        if run.attempts > entry.campaign.settings.retries {
            run.state = terminal
        } else {
            run.state = .queued
        }
        finishVehicle(run.vin, id: id, &actions)
        save(id, position, run, nowMs: nowMs, &actions)
    }

    /// The vehicle no longer holds an offer in this campaign.
    private mutating func finishVehicle(_ vin: VIN, id: UInt32, _ actions: inout [PlannerAction]) {
        if activeCampaign[vin] == id { activeCampaign[vin] = nil }
        actions.append(.clearOffer(vin: vin))
    }

    private mutating func save(
        _ id: UInt32, _ position: Int, _ run: VehicleRun, nowMs: Int64, _ actions: inout [PlannerAction]
    ) {
        var run = run
        run.updatedMs = nowMs
        entries[id]!.runs[position] = run
        actions.append(.saveRun(campaign: id, run: run))
    }

    private mutating func setCampaign(
        _ id: UInt32, _ state: CampaignState, reason: String?, nowMs: Int64, _ actions: inout [PlannerAction]
    ) {
        entries[id]!.campaign.state = state
        entries[id]!.campaign.reason = reason
        entries[id]!.campaign.updatedMs = nowMs
        actions.append(.saveCampaign(entries[id]!.campaign))
    }

    // MARK: - Operator

    public enum ControlError: Error, Equatable, CustomStringConvertible {
        case unknownCampaign(UInt32)
        case notAllowed(campaign: UInt32, state: CampaignState, verb: String)

        public var description: String {
            switch self {
            case .unknownCampaign(let id): "no campaign \(id)"
            case .notAllowed(let id, let state, let verb): "campaign \(id) is \(state.rawValue); it cannot \(verb)"
            }
        }
    }

    public mutating func pause(_ id: UInt32, nowMs: Int64) throws(ControlError) -> [PlannerAction] {
        guard let entry = entries[id] else { throw .unknownCampaign(id) }
        guard entry.campaign.state == .running || entry.campaign.state == .scheduled else {
            throw .notAllowed(campaign: id, state: entry.campaign.state, verb: "pause")
        }
        var actions: [PlannerAction] = []
        setCampaign(id, .paused, reason: "paused by operator", nowMs: nowMs, &actions)
        for run in entry.runs where run.isActive {
            actions.append(.command(vin: run.vin, campaign: id, verb: .pause))
        }
        return actions
    }

    public mutating func resume(_ id: UInt32, nowMs: Int64) throws(ControlError) -> [PlannerAction] {
        guard let entry = entries[id] else { throw .unknownCampaign(id) }
        guard entry.campaign.state == .paused else {
            throw .notAllowed(campaign: id, state: entry.campaign.state, verb: "resume")
        }
        var actions: [PlannerAction] = []
        setCampaign(id, .running, reason: nil, nowMs: nowMs, &actions)
        for position in entry.runs.indices where entry.runs[position].isActive {
            // The pause does not count against the vehicle's timeout.
            entries[id]!.runs[position].progressMs = nowMs
            actions.append(.command(vin: entry.runs[position].vin, campaign: id, verb: .resume))
        }
        return actions
    }

    public mutating func cancel(_ id: UInt32, nowMs: Int64) throws(ControlError) -> [PlannerAction] {
        try end(id, as: .canceled, verb: "cancel", reason: "canceled by operator", nowMs: nowMs)
    }

    /// Like `cancel`, but the campaign ends `aborted`: a fleet's `abort` order, which the operator
    /// gives to every gateway's part at once.
    public mutating func abort(_ id: UInt32, nowMs: Int64) throws(ControlError) -> [PlannerAction] {
        try end(id, as: .aborted, verb: "abort", reason: "aborted by operator", nowMs: nowMs)
    }

    private mutating func end(
        _ id: UInt32, as state: CampaignState, verb: String, reason: String, nowMs: Int64
    ) throws(ControlError) -> [PlannerAction] {
        guard let entry = entries[id] else { throw .unknownCampaign(id) }
        guard !entry.campaign.state.isFinal else {
            throw .notAllowed(campaign: id, state: entry.campaign.state, verb: verb)
        }
        var actions: [PlannerAction] = []
        stop(id, as: state, reason: reason, nowMs: nowMs, &actions)
        return actions
    }

    /// Ends a campaign: vehicles in flight are told to cancel and lose their offer; queued
    /// ones are canceled.
    private mutating func stop(
        _ id: UInt32, as state: CampaignState, reason: String, nowMs: Int64, _ actions: inout [PlannerAction]
    ) {
        guard let entry = entries[id] else { return }
        for position in entry.runs.indices where !entry.runs[position].state.isTerminal {
            var run = entry.runs[position]
            if run.isActive {
                actions.append(.command(vin: run.vin, campaign: id, verb: .cancel))
                finishVehicle(run.vin, id: id, &actions)
            }
            run.state = .canceled
            run.reason = state == .aborted ? "campaign_aborted" : "campaign_canceled"
            save(id, position, run, nowMs: nowMs, &actions)
        }
        setCampaign(id, state, reason: reason, nowMs: nowMs, &actions)
    }
}
