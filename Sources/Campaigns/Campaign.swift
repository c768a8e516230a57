public import OTA
public import Telemetry

public enum CampaignState: String, Sendable, Equatable, CaseIterable {
    case scheduled, running, paused, completed, aborted, canceled

    public var isFinal: Bool { self == .completed || self == .aborted || self == .canceled }
}

/// Hours of the day (local time) in which new offers may go out; may wrap midnight.
public struct InstallWindow: Sendable, Equatable, CustomStringConvertible {
    public var startMinute: Int
    public var endMinute: Int

    /// "01:00-05:00".
    public init?(_ text: String) {
        let halves = text.split(separator: "-", omittingEmptySubsequences: false)
        func minute(_ part: Substring) -> Int? {
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 2, fields[0].count == 2, fields[1].count == 2, let hour = Int(fields[0]),
                let minute = Int(fields[1]), (0...23).contains(hour), (0...59).contains(minute)
            else { return nil }
            return hour * 60 + minute
        }
        guard halves.count == 2, let start = minute(halves[0]), let end = minute(halves[1]), start != end else {
            return nil
        }
        startMinute = start
        endMinute = end
    }

    public func contains(minuteOfDay: Int) -> Bool {
        startMinute < endMinute
            ? (startMinute..<endMinute).contains(minuteOfDay)
            : minuteOfDay >= startMinute || minuteOfDay < endMinute
    }

    public var description: String {
        func format(_ minute: Int) -> String {
            let hour = minute / 60
            let rest = minute % 60
            return (hour < 10 ? "0" : "") + "\(hour):" + (rest < 10 ? "0" : "") + "\(rest)"
        }
        return "\(format(startMinute))-\(format(endMinute))"
    }
}

/// How a campaign rolls out and when it stops itself.
public struct CampaignSettings: Sendable, Equatable {
    /// Cumulative percentages of the targets, ending at 100.
    public var waves: [Int] = [100]
    /// The next wave starts when this share of the vehicles offered so far has installed.
    public var successPct = 95
    /// The campaign aborts when failures exceed this share of finished vehicles...
    public var abortFailurePct = 20
    /// ...once at least this many have finished.
    public var abortMinFinished = 5
    /// A vehicle that reports nothing for this long has its attempt timed out.
    public var vehicleTimeoutSeconds = 900
    /// Further attempts after a timeout or a failed install (rejections are not retried:
    /// the same manifest would be rejected again).
    public var retries = 2
    public var window: InstallWindow?

    public init() {}

    /// Nil when valid, else what is wrong.
    public func problem() -> String? {
        guard !waves.isEmpty, waves.count <= 20 else { return "waves must list 1 to 20 percentages" }
        guard waves.last == 100 else { return "the last wave must be 100 (percent of targets)" }
        guard waves.allSatisfy({ (1...100).contains($0) }), zip(waves, waves.dropFirst()).allSatisfy({ $0 < $1 })
        else { return "waves must be increasing percentages from 1 to 100, e.g. 5,25,100" }
        guard (1...100).contains(successPct) else { return "success_pct must be 1 to 100" }
        guard (0...100).contains(abortFailurePct) else { return "abort_failure_pct must be 0 to 100" }
        guard abortMinFinished >= 1 else { return "abort_min_finished must be at least 1" }
        guard (10...604_800).contains(vehicleTimeoutSeconds) else { return "vehicle_timeout_s must be 10 to 604800" }
        guard (0...20).contains(retries) else { return "retries must be 0 to 20" }
        return nil
    }
}

public struct Campaign: Sendable, Equatable {
    public var id: UInt32
    public var manifestID: Int64
    public var hardwareID: String
    /// True when the manifest targets every vehicle of its hardware: vehicles that report
    /// later join the last wave.
    public var targetsAll: Bool
    public var settings: CampaignSettings
    public var state: CampaignState
    /// Index into `settings.waves` of the newest wave started.
    public var wave: Int
    public var reason: String?
    public var createdMs: Int64
    public var updatedMs: Int64
    /// Part of a fleet campaign (fleet OTA): this gateway runs it for the target vehicles it
    /// sees, and waves, abort and completion follow the fleet's tally, not its own runs.
    public var fleet = false

    public init(
        id: UInt32, manifestID: Int64, hardwareID: String, targetsAll: Bool, settings: CampaignSettings,
        state: CampaignState = .running, wave: Int = 0, reason: String? = nil, createdMs: Int64, updatedMs: Int64,
        fleet: Bool = false
    ) {
        self.fleet = fleet
        self.id = id
        self.manifestID = manifestID
        self.hardwareID = hardwareID
        self.targetsAll = targetsAll
        self.settings = settings
        self.state = state
        self.wave = wave
        self.reason = reason
        self.createdMs = createdMs
        self.updatedMs = updatedMs
    }
}

/// One vehicle in one campaign.
public struct VehicleRun: Sendable, Equatable {
    public var vin: VIN
    /// Position in the campaign's target order; decides the wave.
    public var order: Int
    public var state: VehicleState
    public var attempts: Int
    public var file: FileKind?
    public var blocksDone: Int
    public var blocksTotal: Int
    public var fetchedBlocks: Int
    public var reason: String?
    public var detail: String?
    /// Last time the vehicle showed life for this campaign (a status or a block request).
    public var progressMs: Int64
    public var updatedMs: Int64

    public init(
        vin: VIN, order: Int, state: VehicleState = .queued, attempts: Int = 0, file: FileKind? = nil,
        blocksDone: Int = 0, blocksTotal: Int = 0, fetchedBlocks: Int = 0, reason: String? = nil,
        detail: String? = nil, progressMs: Int64 = 0, updatedMs: Int64 = 0
    ) {
        self.vin = vin
        self.order = order
        self.state = state
        self.attempts = attempts
        self.file = file
        self.blocksDone = blocksDone
        self.blocksTotal = blocksTotal
        self.fetchedBlocks = fetchedBlocks
        self.reason = reason
        self.detail = detail
        self.progressMs = progressMs
        self.updatedMs = updatedMs
    }

    /// Offered or transferring: holds one of the gateway's transfer slots.
    public var holdsSlot: Bool { state == .offered || state == .downloading }
    public var isActive: Bool { !state.isTerminal && state != .queued }
}

/// The whole fleet's progress in one campaign, summed by the depot from every gateway's
/// reports (each vehicle once, wherever it was last). Wave figures are cumulative, in the
/// manifest's target order, so every gateway draws the same wave lines.
public struct FleetTally: Sendable, Equatable {
    public struct Wave: Sendable, Equatable {
        public var size: Int
        public var installed: Int
        public var terminal: Int

        public init(size: Int, installed: Int, terminal: Int) {
            self.size = size
            self.installed = installed
            self.terminal = terminal
        }
    }

    public var targets: Int
    /// Vehicles in a final state other than canceled.
    public var finished: Int
    public var failures: Int
    public var installed: Int
    /// Vehicles in any final state.
    public var terminal: Int
    public var waves: [Wave]

    public init(targets: Int, finished: Int, failures: Int, installed: Int, terminal: Int, waves: [Wave]) {
        self.targets = targets
        self.finished = finished
        self.failures = failures
        self.installed = installed
        self.terminal = terminal
        self.waves = waves
    }
}
