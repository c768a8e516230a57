/// The release of gatewayd, shown by `--version`, in logs and later in the health endpoint.
public enum GatewayVersion {
    public static let current = "0.1.0"
}
