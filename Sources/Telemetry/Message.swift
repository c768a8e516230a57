/// A device message after decoding: everything the store needs, nothing it must re-check.
public enum Message: Sendable, Equatable {
    /// Readings with the time and sequence number of the message that carried them.
    /// `entryRejections` are single PID entries refused while the rest were kept.
    case readings(device: DeviceID, ts: Int64, seq: UInt32, readings: [Reading], entryRejections: [Rejection])
    case troubleCodes(device: DeviceID, ts: Int64, seq: UInt32, codes: [TroubleCode])
    /// `nextSeq`: the seq of the unit's next data message, which lets the gateway recognise a
    /// counter that restarted (after a reboot) instead of dropping its messages as replays.
    case hello(device: DeviceID, firmware: String, hardware: String, model: String?, nextSeq: UInt32?)

    public var device: DeviceID {
        switch self {
        case .readings(let device, _, _, _, _), .troubleCodes(let device, _, _, _), .hello(let device, _, _, _, _):
            device
        }
    }
}
