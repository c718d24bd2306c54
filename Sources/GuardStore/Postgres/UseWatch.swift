// The watchdog of one use of a PostgreSQL connection (`state.timeout`): a use in which no
// query finishes for the timeout (a server that stopped answering, a half-open connection)
// has its connection closed, which fails the query, so that it cannot hold its caller for
// ever. A long write that keeps finishing statements goes on. Used by PostgresStateStore only.

import Synchronization

/// How far one use of the connection has got: the queries a long write has finished (each
/// one gives the watchdog another `timeout`), and whether the watchdog closed it.
final class UseWatch: Sendable {
    @TaskLocal static var current: UseWatch?
    let finished = Atomic<Int>(0)
    private let expired = Atomic<Bool>(false)

    var hasExpired: Bool { self.expired.load(ordering: .relaxed) }

    /// A long write is about to send its next statement: the one before it finished.
    static func progressed() {
        Self.current?.finished.add(1, ordering: .relaxed)
    }

    /// Returns, marked expired, once a whole `timeout` has gone by with no query finished;
    /// throws when cancelled (the use ended first).
    func expire(after timeout: Duration) async throws {
        var seen = -1
        while self.finished.load(ordering: .relaxed) != seen {
            seen = self.finished.load(ordering: .relaxed)
            try await Task.sleep(for: timeout)
        }
        self.expired.store(true, ordering: .relaxed)
    }
}
