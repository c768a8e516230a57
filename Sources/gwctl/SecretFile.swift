import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where creating a secret file failed: creating it (it exists, or no permission) or writing it.
enum SecretFileError: Error {
    case create(reason: String)
    case write
}

/// Writes a secret (a signing key, a device password) to a new file that is 0600 from the
/// start, never briefly readable by others, and never overwrites an existing one.
func createSecretFile(_ path: String, _ text: String) throws(SecretFileError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw .create(reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count, fsync(fd) == 0 else { throw .write }
}
