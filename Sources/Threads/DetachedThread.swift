#if canImport(Glibc)
    import Glibc
#endif

/// A named, detached OS thread: what the daemon's long-running loops (ingest, upstream, OTA
/// control) and each HTTP connection run on.
///
/// Written over pthreads rather than Foundation's `Thread` so that gatewayd links only
/// FoundationEssentials: full Foundation brings ICU's data (about 45 MB a binary). Unlike
/// `Thread.start()`, a failure to create the thread (out of memory or the process's thread
/// limit) is returned to the caller, who can refuse one connection instead of crashing.
public enum DetachedThread {
    /// Starts `body` on a new thread; false if the system would not create one.
    @discardableResult
    public static func start(name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) -> Bool {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
        let context = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, &attributes, runStart, context) == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            return false
        }
        return true
    }

    final class Start: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
}

/// The thread's entry point: takes back the retained context, names the thread and runs the
/// body. The name goes through /proc/thread-self/comm (what `top -H` and `ps -L` show; 15 bytes
/// at most): pthread_setname_np is a GNU extension Swift's Glibc module does not export.
private func runStart(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<DetachedThread.Start>.fromOpaque(context!).takeRetainedValue()
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    if fd >= 0 {
        let name = Array(start.name.utf8.prefix(15))
        _ = name.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
    start.body()
    return nil
}
