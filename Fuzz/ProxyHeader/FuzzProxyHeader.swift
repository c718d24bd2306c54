// libFuzzer entry point for FuzzTargets.proxyHeader (see scripts/fuzz.sh). Built without -DFUZZING
// it is a replayer: `fuzz-proxy-header FILE...` runs each file through the same target.

import FuzzTargets

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    FuzzTargets.proxyHeader(Array(UnsafeBufferPointer(start: start, count: count)))
    return 0
}

// SwiftPM may link an executable's entry point under the module's name: it hands over to
// libFuzzer's driver too.
@_cdecl("fuzz_proxy_header_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc: argc, argv: argv) { FuzzTargets.proxyHeader($0) }
}
#else
@main
struct Replay {
    static func main() throws {
        for path in CommandLine.arguments.dropFirst() {
            FuzzTargets.proxyHeader(try FuzzCorpus.read(path))
            print("ok \(path)")
        }
    }
}
#endif
