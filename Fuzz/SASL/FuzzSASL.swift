// fuzz-sasl: FuzzTargets.sasl under libFuzzer (scripts/fuzz.sh builds it with -DFUZZING),
// or, built normally, a replayer: `fuzz-sasl FILE...`.

import FuzzTargets

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt { FuzzDriver.one(start, count, FuzzTargets.sasl) }

@_cdecl("fuzz_sasl_main")  // the entry point SwiftPM links under the module's name
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc: argc, argv: argv, FuzzTargets.sasl)
}
#else
@main struct Replay { static func main() throws { try FuzzCorpus.replay(CommandLine.arguments.dropFirst(), FuzzTargets.sasl) } }
#endif
