// fuzz-evtx: FuzzTargets.evtx under libFuzzer (scripts/fuzz.sh builds it with -DFUZZING),
// or, built normally, a replayer: `fuzz-evtx FILE...`.

import FuzzTargets

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt { FuzzDriver.one(start, count, FuzzTargets.evtx) }

@_cdecl("fuzz_evtx_main")  // the entry point SwiftPM links under the module's name
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc: argc, argv: argv, FuzzTargets.evtx)
}
#else
@main struct Replay { static func main() throws { try FuzzCorpus.replay(CommandLine.arguments.dropFirst(), FuzzTargets.evtx) } }
#endif
