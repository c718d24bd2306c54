// Two guards' books of trusted networks on one state, as two guards on one PostgreSQL
// database have them: what one adds or removes reaches the other's engine when it reads the
// state again (ClusterSync does that on a notification and at every reconciliation).

import Foundation
import GuardCore
import GuardStore
import Testing

@Suite struct TrustedNetworkBookTests {
    @Test func anotherGuardsChangesReachTheEngineOnReload() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("smtpguard-trusted-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try await SQLiteStateStore.open(path: folder.appendingPathComponent("state.db").path)
        do {
            try await Self.exchange(over: store)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    static func exchange(over store: SQLiteStateStore) async throws {
        let now = Timestamp(seconds: 1_800_000_000)
        let engineA = Guard(policy: GuardPolicy(), clock: ManualClock(), events: FanOutEventSink([]), seed: 1)
        var policyB = GuardPolicy()
        policyB.trustedNetworks = NetworkList([IPNetwork("192.0.2.0/24")!])
        let engineB = Guard(policy: policyB, clock: ManualClock(), events: FanOutEventSink([]), seed: 2)
        let bookA = TrustedNetworkBook(configured: [], store: store, guardEngine: engineA)
        let bookB = TrustedNetworkBook(configured: policyB.trustedNetworks.networks, store: store, guardEngine: engineB)
        try await bookA.load()
        try await bookB.load()
        let office = IPNetwork("10.0.0.0/8")!
        let vpn = IPNetwork("172.16.0.0/12")!

        _ = try await bookA.add(office, comment: "office", now: now)
        #expect(engineA.isTrusted(IPAddress("10.1.2.3")!))
        #expect(!engineB.isTrusted(IPAddress("10.1.2.3")!))
        let first = try await bookB.reload()
        #expect(first.added == [office] && first.removed.isEmpty)
        #expect(engineB.isTrusted(IPAddress("10.1.2.3")!))
        #expect(engineB.isTrusted(IPAddress("192.0.2.7")!))  // the configured one stays
        #expect(await bookB.entries().map(\.comment) == ["", "office"])
        let unchanged = try await bookB.reload()
        #expect(unchanged.added.isEmpty && unchanged.removed.isEmpty)

        // B removes what A added after B last read the state: it is still found and removed.
        _ = try await bookA.add(vpn, comment: "vpn", now: now + .seconds(1))
        #expect(try await bookB.remove(vpn) == .removed)
        #expect(try await bookB.remove(vpn) == .notFound)
        #expect(try await bookB.remove(IPNetwork("192.0.2.0/24")!) == .configured)
        #expect(try await bookB.remove(office) == .removed)
        #expect(!engineB.isTrusted(IPAddress("10.1.2.3")!))
        let second = try await bookA.reload()
        #expect(second.added.isEmpty && Set(second.removed) == [office, vpn])
        #expect(!engineA.isTrusted(IPAddress("10.1.2.3")!) && !engineA.isTrusted(IPAddress("172.16.5.5")!))

        // A network B's configuration file has anyway is listed there once, as the file's.
        _ = try await bookA.add(IPNetwork("192.0.2.0/24")!, comment: "lab", now: now + .seconds(2))
        _ = try await bookB.reload()
        #expect(await bookB.entries().map(\.origin) == [.configuration])
    }
}
