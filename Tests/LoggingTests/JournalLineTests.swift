import Foundation
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Under systemd, gatewayd's stderr is the journal: a line must carry its priority as an
/// sd-daemon `<N>` prefix (so `journalctl -p warning` filters it) and no timestamp of its own.
/// Anywhere else the line starts with `ts=`.
@Suite(.serialized)
struct JournalLineTests {
    /// A temporary file standing in for the journal's stream: same check (device and inode).
    func withFile(_ body: (Int32, String) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)").path
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        #expect(fd >= 0)
        defer {
            close(fd)
            unlink(path)
        }
        try body(fd, path)
    }

    func streamID(_ fd: Int32) -> String {
        var info = stat()
        fstat(fd, &info)
        return "\(info.st_dev):\(info.st_ino)"
    }

    @Test func journalStreamGetsPriorityPrefixesAndNoTimestamp() throws {
        try withFile { fd, path in
            setenv("JOURNAL_STREAM", streamID(fd), 1)
            defer { unsetenv("JOURNAL_STREAM") }
            let sink = LogSink(descriptor: fd)
            #expect(sink.isJournal)
            let logger = Logger(level: .debug, sink: sink).with("component", "test")
            logger.debug("a")
            logger.info("b")
            logger.notice("c")
            logger.warning("d", [("k", "v w")])
            logger.error("e")
            logger.critical("f")
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(
                lines == [
                    "<7>level=debug event=a component=test", "<6>level=info event=b component=test",
                    "<5>level=notice event=c component=test", "<4>level=warning event=d component=test k=\"v w\"",
                    "<3>level=error event=e component=test", "<2>level=critical event=f component=test",
                ])
        }
    }

    /// The variable is inherited by anything the service starts; a descriptor that is not that
    /// stream (output redirected to a file) keeps the plain format.
    @Test func otherDescriptorKeepsTimestamps() throws {
        try withFile { journal, _ in
            try withFile { fd, path in
                setenv("JOURNAL_STREAM", streamID(journal), 1)
                defer { unsetenv("JOURNAL_STREAM") }
                let sink = LogSink(descriptor: fd)
                #expect(!sink.isJournal)
                Logger(level: .info, sink: sink).warning("plain")
                let line = try String(contentsOfFile: path, encoding: .utf8)
                #expect(line.hasPrefix("ts=") && line.contains(" level=warning event=plain"))
                #expect(!line.hasPrefix("<"))
            }
        }
    }

    @Test func malformedVariableIsNotAJournal() throws {
        try withFile { fd, _ in
            for value in ["", "12", "a:b", "1:2:3", "\(streamID(fd))x"] {
                setenv("JOURNAL_STREAM", value, 1)
                #expect(!LogSink(descriptor: fd).isJournal, "JOURNAL_STREAM=\(value)")
            }
            unsetenv("JOURNAL_STREAM")
        }
    }
}
