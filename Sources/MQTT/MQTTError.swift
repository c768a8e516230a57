import CMosquitto

/// A failed MQTT operation, with libmosquitto's code and what was being attempted.
public enum MQTTError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A libmosquitto call returned an error code.
    case library(operation: String, code: Int32)
    /// The broker refused the connection (CONNACK return code).
    case refused(code: Int32)
    /// A configuration value libmosquitto would not take (bad TLS file, bad id, ...).
    case configuration(String)
    /// The client was stopped before the operation completed.
    case stopped

    public var description: String {
        switch self {
        case .library(let operation, let code):
            return "\(operation) failed: \(String(cString: mosquitto_strerror(code))) (mosquitto error \(code))"
        case .refused(let code):
            return "broker refused the connection: \(String(cString: mosquitto_connack_string(code))) (CONNACK \(code))"
        case .configuration(let message):
            return message
        case .stopped:
            return "MQTT client stopped"
        }
    }
}
