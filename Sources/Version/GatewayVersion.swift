/// The release of gatewayd and gwctl, shown by their `--version`, in health, metrics and the
/// status message; `Deploy/build-deb.sh` reads the package version from this line.
public enum GatewayVersion {
    public static let current = "0.1.0"
}
