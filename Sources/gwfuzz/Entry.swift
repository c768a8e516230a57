import FuzzTargets

#if canImport(Glibc)
    import Glibc
#endif

/// One line on standard error.
func complain(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

#if FUZZING
    /// libFuzzer's entry points: `GWFUZZ_TARGET` names the parser under test.
    nonisolated(unsafe) private var target: FuzzTarget?

    @_cdecl("LLVMFuzzerInitialize")
    public func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
        let name = getenv("GWFUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let chosen = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            complain("gwfuzz: set GWFUZZ_TARGET to one of: \(names)")
            exit(64)
        }
        target = chosen
        return 0
    }

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        target?.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }

    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    /// SwiftPM links an executable's entry point as `{module}_main` (and aliases `main` to
    /// it), so libFuzzer's own `main` is never pulled in: start its driver from here.
    @_cdecl("gwfuzz_main")
    public func gwfuzzMain(
        _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    ) -> Int32 {
        var count = argc
        var vector = argv
        return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzerTestOneInput(data, size) }
    }
#else
    /// Without libFuzzer: replays files through a target, to reproduce a crash in a debugger
    /// (`gwfuzz decoder crash-1234`) or to check a corpus.
    @main
    struct Replay {
        static func main() {
            let arguments = CommandLine.arguments.dropFirst()
            guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count >= 2 else {
                let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
                complain("usage: gwfuzz \(names) FILE...")
                exit(64)
            }
            for path in arguments.dropFirst() {
                guard let file = fopen(path, "rb") else {
                    complain("gwfuzz: cannot read \(path)")
                    exit(66)
                }
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let n = fread(&chunk, 1, chunk.count, file)
                    if n <= 0 { break }
                    bytes.append(contentsOf: chunk[0..<n])
                }
                fclose(file)
                bytes.withUnsafeBytes { target.run($0) }
                print("\(path): ok (\(bytes.count) bytes)")
            }
        }
    }
#endif
