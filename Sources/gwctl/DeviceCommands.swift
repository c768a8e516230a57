import Crypto
import Foundation
import Telemetry

#if canImport(Glibc)
    import Glibc
#endif

/// `gwctl device add|remove|list`: who may connect to the board's broker, and on which topics.
///
/// The password file (mosquitto's `password_file`) is the list of enrolled devices; the ACL
/// file's device section is rewritten from it every time, so the two cannot disagree. Both
/// are replaced atomically (write, fsync, rename) and the broker is told to reload them
/// (SIGHUP through its pid file), so an enrolment takes effect without dropping anyone.
enum DeviceCommands {
    static let marker = "# --- devices: written by gwctl device add/remove, do not edit below this line ---"
    /// Accounts that are not devices and must not be touched by these commands.
    static let reserved: Set<String> = ["gatewayd", "monitor"]

    struct Files {
        var passwd: String
        var acl: String
        var pidFile: String?
        /// The pid file was named on the command line: no fallback to systemd if it fails.
        var pidFileGiven = false
    }

    enum Kind: String {
        case vehicle, water
    }

    /// A device id is a VIN (vehicle) or a sensor id (water gauge); both are safe as a
    /// username, a topic level and an ACL line.
    static func kind(of id: String, forced: String?) -> Kind? {
        switch forced {
        case "vehicle": return VIN(id) != nil ? .vehicle : nil
        case "water": return SensorID(id) != nil ? .water : nil
        case nil: return VIN(id) != nil ? .vehicle : SensorID(id) != nil ? .water : nil
        default: return nil
        }
    }

    static func aclBlock(_ id: String, _ kind: Kind) -> [String] {
        switch kind {
        case .vehicle:
            return [
                "user \(id)",
                "topic write v1/obd/\(id)/#",
                "topic read v1/advisory/\(id)",
                "topic read v1/ota/\(id)/offer",
                "topic read v1/ota/\(id)/data",
                "topic read v1/ota/\(id)/cmd",
                "topic write v1/ota/\(id)/get",
                "topic write v1/ota/\(id)/status",
            ]
        case .water:
            return ["user \(id)", "topic write v1/water/\(id)/level"]
        }
    }

    /// Enrolled devices: (id, password hash line), in file order.
    static func readPasswd(_ path: String) throws(ClientError) -> [(id: String, line: String)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .usage(
                "cannot read the password file \(path) (install the telemetry-gateway package, or pass --passwd)")
        }
        return text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line))
        }
    }

    static func add(_ id: String, files: Files, forcedKind: String?, rotate: Bool, passwordOut: String?)
        throws(ClientError)
    {
        guard !reserved.contains(id), let kind = kind(of: id, forced: forcedKind) else {
            throw .usage(
                "\"\(id)\" is not a device id: a VIN (17 of A-H J-N P R-Z 0-9) or a sensor id (1 to 64 of A-Z a-z 0-9 _ . -, starting with a letter or digit)"
            )
        }
        var entries = try readPasswd(files.passwd)
        let existing = entries.firstIndex { $0.id == id }
        if existing != nil && !rotate {
            throw .usage("\(id) is already enrolled: --rotate gives it a new password, device remove takes it out")
        }
        let password: String
        let line: String
        do {
            password = try BrokerPassword.generate()
            line = "\(id):\(try BrokerPassword.hash(password))"
        } catch {
            throw .usage("OpenSSL could not make a password: \(error)")
        }
        if let existing { entries[existing].line = line } else { entries.append((id, line)) }
        // The password file first: if it cannot be written, nothing is enrolled yet.
        if let passwordOut {
            do {
                try createSecretFile(passwordOut, password + "\n")
            } catch {
                throw .usage("cannot create \(passwordOut) (it must not exist yet)")
            }
        }
        try write(entries, files: files)
        if let passwordOut {
            print(
                "\(id) \(existing == nil ? "enrolled" : "rotated") as a \(kind.rawValue); password written to \(passwordOut)"
            )
        } else {
            print("\(id) \(existing == nil ? "enrolled" : "rotated") as a \(kind.rawValue)")
            print("mqtt username: \(id)")
            print("mqtt password: \(password)")
            print("(shown once: provision it on the device now; gwctl device add \(id) --rotate makes a new one)")
        }
        reload(files)
    }

    static func remove(_ id: String, files: Files) throws(ClientError) {
        guard !reserved.contains(id) else { throw .usage("\(id) is the gateway's own account, not a device") }
        var entries = try readPasswd(files.passwd)
        guard let index = entries.firstIndex(where: { $0.id == id }) else { throw .usage("\(id) is not enrolled") }
        entries.remove(at: index)
        try write(entries, files: files)
        print("\(id) removed: it can no longer connect or publish")
        reload(files)
    }

    static func list(files: Files, json: Bool) throws(ClientError) {
        let devices = try readPasswd(files.passwd).filter { !reserved.contains($0.id) }
        if json {
            let rows = devices.map {
                #"{"id":"\#($0.id)","kind":"\#(kind(of: $0.id, forced: nil)?.rawValue ?? "unknown")"}"#
            }
            print("[" + rows.joined(separator: ",") + "]")
            return
        }
        print(table(["DEVICE", "KIND"], devices.map { [$0.id, kind(of: $0.id, forced: nil)?.rawValue ?? "unknown"] }))
        print("\(devices.count) device(s)")
    }

    /// Rewrites both files from the enrolled list: the password file whole, the ACL file below
    /// its marker (what is above, the gateway's own rules, is kept as it is).
    static func write(_ entries: [(id: String, line: String)], files: Files) throws(ClientError) {
        guard let acl = try? String(contentsOfFile: files.acl, encoding: .utf8) else {
            throw .usage("cannot read the ACL file \(files.acl) (install the telemetry-gateway package, or pass --acl)")
        }
        let head = acl.components(separatedBy: marker).first ?? acl
        var blocks: [String] = []
        for entry in entries where !reserved.contains(entry.id) {
            guard let kind = kind(of: entry.id, forced: nil) else { continue }
            blocks.append(aclBlock(entry.id, kind).joined(separator: "\n"))
        }
        let newACL =
            head.trimmingCharacters(in: .newlines) + "\n\n" + marker + "\n" + blocks.joined(separator: "\n\n") + "\n"
        let newPasswd = entries.map(\.line).joined(separator: "\n") + "\n"
        guard replace(files.acl, with: newACL), replace(files.passwd, with: newPasswd) else {
            throw .usage("cannot write \(files.acl) or \(files.passwd): run as root (or the broker's owner)")
        }
    }

    /// Writes beside `path` and renames over it, keeping its owner and mode, so the broker
    /// never reads half a file.
    static func replace(_ path: String, with text: String) -> Bool {
        var info = stat()
        let existed = stat(path, &info) == 0
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, existed ? info.st_mode & 0o777 : 0o640)
        guard fd >= 0 else { return false }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if existed { _ = fchown(fd, info.st_uid, info.st_gid) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            return false
        }
        return true
    }

    /// mosquitto rereads its password and ACL files on SIGHUP. Debian's broker writes its pid to
    /// the default path; where it does not (another `pid_file`, or none), a board under systemd
    /// is reloaded through the unit, which sends the same signal (`ExecReload=kill -HUP`).
    static func reload(_ files: Files) {
        guard let pidFile = files.pidFile else { return }
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1, kill(pid, SIGHUP) == 0
        {
            print("broker reloaded (pid \(pid))")
            return
        }
        if !files.pidFileGiven, access("/run/systemd/system", F_OK) == 0, systemctlReload() {
            print("broker reloaded (systemctl reload mosquitto.service)")
            return
        }
        FileHandle.standardError.write(
            Data(
                "gwctl: could not signal the broker through \(pidFile); reload it yourself: systemctl reload mosquitto\n"
                    .utf8))
    }

    static func systemctlReload() -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/systemctl")
        process.arguments = ["reload", "mosquitto.service"]
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
