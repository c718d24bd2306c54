// The open-file limit the guard asks for at start.

import Testing

@testable import SMTPProxy

@Suite("Open-file limit")
struct DescriptorLimitTests {
    @Test("the soft limit is raised to two descriptors per connection and a reserve, never past the hard limit, never lowered")
    func plan() {
        let roomy = DescriptorPlan(soft: 1024, hard: 65536, maxConnections: 1000)
        #expect(roomy.needed == 2128)
        #expect(roomy.target == 2128 && roomy.raises && !roomy.hardTooLow)
        #expect(roomy.message?.warning == false)
        #expect(roomy.message?.text.contains("from 1024 to 2128") == true)

        let tight = DescriptorPlan(soft: 1024, hard: 20000, maxConnections: 15000)
        #expect(tight.target == 20000 && tight.hardTooLow)
        #expect(tight.message?.warning == true)
        #expect(tight.message?.text.contains("hard open-file limit (RLIMIT_NOFILE) is 20000, below the 30128") == true)
        #expect(tight.idleClientsThatFit == 19872)

        let already = DescriptorPlan(soft: 100_000, hard: 100_000, maxConnections: 10)
        #expect(already.target == 100_000 && !already.raises && already.message == nil)
    }

    @Test("the process's own limit can be read and set back to what it was")
    func process() throws {
        let (soft, hard) = try #require(DescriptorLimit.current())
        #expect(soft <= hard)
        #expect(DescriptorLimit.setSoft(soft) == nil)
        #expect(DescriptorLimit.current()?.soft == soft)
    }
}
