import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// Firmware images and patches on disk, named by their SHA-256.
///
/// An upload goes to `<sha256>.<length>.part`, appended in order (so it resumes from the
/// part's size after any interruption), and becomes `<sha256>` only after its hash is
/// checked and the file synced: a blob under its final name is always whole and correct
/// as uploaded. Metadata is the file system itself, so nothing can disagree with it.
public final class BlobStore: Sendable {
    public let directory: String
    /// Largest blob accepted.
    public let maxLength: UInt64

    public init(directory: String, maxLength: UInt64) throws {
        self.directory = directory
        self.maxLength = maxLength
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    public enum UploadError: Error, Equatable, CustomStringConvertible {
        case badName(String)
        case tooLarge(length: UInt64, limit: UInt64)
        case offsetMismatch(expected: UInt64, got: UInt64)
        case lengthMismatch(existing: UInt64, declared: UInt64)
        case overrun(end: UInt64, length: UInt64)
        case hashMismatch(expected: String, actual: String)
        case io(String)

        public var description: String {
            switch self {
            case .badName(let name): "\(name) is not a SHA-256 (64 lowercase hex digits)"
            case .tooLarge(let length, let limit): "\(length) bytes is more than ota.max_blob_bytes (\(limit))"
            case .offsetMismatch(let expected, let got):
                "the upload continues at byte \(expected), this chunk starts at \(got); ask for the status and resume there"
            case .lengthMismatch(let existing, let declared):
                "an upload of \(existing) bytes is in progress under this hash, this one declares \(declared)"
            case .overrun(let end, let length): "the chunk ends at \(end), past the declared length \(length)"
            case .hashMismatch(let expected, let actual):
                "the uploaded bytes hash to \(actual), not \(expected); the partial upload was discarded"
            case .io(let detail): "blob store I/O failed: \(detail)"
            }
        }
    }

    public struct Status: Sendable, Equatable {
        public var sha256: String
        /// Nil when nothing is known under this hash.
        public var length: UInt64?
        public var received: UInt64
        public var complete: Bool
    }

    static func isHash(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    public func path(of sha256: String) -> String { directory + "/" + sha256 }

    private func partial(of sha256: String) -> (path: String, length: UInt64)? {
        let prefix = sha256 + "."
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".part") {
            let middle = name.dropFirst(prefix.count).dropLast(5)
            if let length = UInt64(middle) { return (directory + "/" + name, length) }
        }
        return nil
    }

    private func fileSize(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_size)
    }

    public func status(_ sha256: String) throws(UploadError) -> Status {
        guard Self.isHash(sha256) else { throw .badName(sha256) }
        if let size = fileSize(path(of: sha256)) {
            return Status(sha256: sha256, length: size, received: size, complete: true)
        }
        if let part = partial(of: sha256) {
            return Status(sha256: sha256, length: part.length, received: fileSize(part.path) ?? 0, complete: false)
        }
        return Status(sha256: sha256, length: nil, received: 0, complete: false)
    }

    /// Appends `bytes` at `offset` of a blob of `length` bytes. Idempotent for a blob that is
    /// already whole. Serialised by the caller (one upload per hash at a time).
    public func append(sha256: String, length: UInt64, offset: UInt64, bytes: [UInt8]) throws(UploadError) -> Status {
        let current = try status(sha256)
        if current.complete {
            guard current.length == length else {
                throw .lengthMismatch(existing: current.length ?? 0, declared: length)
            }
            return current
        }
        guard length > 0, length <= maxLength else { throw .tooLarge(length: length, limit: maxLength) }
        if let existing = current.length, existing != length {
            throw .lengthMismatch(existing: existing, declared: length)
        }
        guard offset == current.received else { throw .offsetMismatch(expected: current.received, got: offset) }
        let end = offset + UInt64(bytes.count)
        guard end <= length else { throw .overrun(end: end, length: length) }
        let partPath = directory + "/\(sha256).\(length).part"
        let fd = open(partPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .io("open \(partPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                pwrite(fd, raw.baseAddress! + written, raw.count - written, off_t(offset) + off_t(written))
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw .io("write \(partPath): \(String(cString: strerror(errno)))")
            }
            written += count
        }
        guard end == length else { return Status(sha256: sha256, length: length, received: end, complete: false) }
        guard fsync(fd) == 0 else { throw .io("fsync \(partPath): \(String(cString: strerror(errno)))") }
        let actual = SHA256Hasher.file(atPath: partPath).map(Hex.encode) ?? "unreadable"
        guard actual == sha256 else {
            unlink(partPath)
            throw .hashMismatch(expected: sha256, actual: actual)
        }
        guard rename(partPath, path(of: sha256)) == 0 else {
            throw .io("rename \(partPath): \(String(cString: strerror(errno)))")
        }
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
        return Status(sha256: sha256, length: length, received: length, complete: true)
    }

    /// Opens a whole blob for serving blocks.
    public func openForReading(_ sha256: String) -> BlobReader? {
        let fd = open(path(of: sha256), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        return BlobReader(fd: fd, length: fileSize(path(of: sha256)) ?? 0)
    }
}

/// An open blob: blocks are read with `pread`, so many transfers share one descriptor and
/// no image is ever held in memory.
public final class BlobReader: @unchecked Sendable {
    // Safe to share: pread carries its own offset and the descriptor is closed only in deinit.
    let fd: Int32
    public let length: UInt64

    init(fd: Int32, length: UInt64) {
        self.fd = fd
        self.length = length
    }

    deinit { close(fd) }

    /// Reads `buffer.count` bytes at `offset`; false on a short read or an error.
    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var done = 0
        while done < buffer.count {
            let count = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            done += count
        }
        return true
    }
}
