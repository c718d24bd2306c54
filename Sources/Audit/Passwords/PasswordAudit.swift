// The password audit: for each account, the candidates of PasswordRules, most likely first,
// against its stored hash, until one matches or the account's time is up. The work goes out in
// chunks of an account's candidates to one worker thread per core (crypt(3) is CPU work that
// must not sit on Swift's cooperative pool), each with its own crypt buffer; when a chunk
// finds a match, later candidates of that account are skipped, and the earliest match (the
// most likely rule) is the one reported.

import Dispatch
import Synchronization

public struct AccountVerdict: Sendable {
    public let username: String
    public let line: Int
    /// SHA512-CRYPT, SSHA256 …; nil when there is no hash.
    public let scheme: String?
    public let outcome: Outcome
    /// Candidates tried against the hash.
    public let tried: Int
    public let seconds: Double

    public enum Outcome: Sendable {
        /// A candidate matched (or none was needed): the rule, and the password it found.
        case guessable(PasswordRule, password: String)
        /// Every candidate was tried and none matched.
        case notGuessed
        /// The time for the account ran out after `tried` of `of` candidates.
        case unfinished(of: Int)
        case skipped(String)
        case unreadable(String)
    }
}

public struct PasswordAudit: Sendable {
    public let rules: PasswordRules
    /// Worker threads (by default one per core).
    public let jobs: Int
    /// The most time spent on one account.
    public let timePerAccount: Duration
    /// Candidates a worker takes at a time: an account's candidates are shared out in chunks,
    /// so that one account with a slow hash keeps every core busy.
    let chunkSize: Int

    public init(rules: PasswordRules, jobs: Int, timePerAccount: Duration, chunkSize: Int = 64) {
        self.rules = rules
        self.jobs = max(1, jobs)
        self.timePerAccount = timePerAccount
        self.chunkSize = max(1, chunkSize)
    }

    /// One account's work while the audit runs, shared by the workers on its chunks.
    final class AccountWork: Sendable {
        let entry: AccountEntry
        let stored: StoredPassword?
        let candidates: [PasswordCandidate]
        let chunks: Int
        /// The lowest index of a matching candidate so far (Int.max: none): later ones are skipped.
        let match = Atomic<Int>(Int.max)
        let state = Mutex<(started: ContinuousClock.Instant?, tried: Int, chunksDone: Int, outOfTime: Bool)>((nil, 0, 0, false))

        init(entry: AccountEntry, rules: PasswordRules, chunkSize: Int) {
            self.entry = entry
            if case .stored(let stored) = entry.password {
                self.stored = stored
                self.candidates = rules.candidates(for: entry.username)
            } else {
                self.stored = nil
                self.candidates = []
            }
            self.chunks = max(1, (self.candidates.count + chunkSize - 1) / chunkSize)
        }
    }

    /// Audits `entries`; `progress(done, guessable)` is called after each account (from the
    /// worker threads, one at a time). Verdicts come back in the order of the entries.
    public func run(_ entries: [AccountEntry], progress: @Sendable (_ done: Int, _ guessable: Int) -> Void = { _, _ in }) -> [AccountVerdict] {
        let work = entries.map { AccountWork(entry: $0, rules: self.rules, chunkSize: self.chunkSize) }
        // Every (account, chunk), accounts in file order: workers take the next one.
        let units = work.indices.flatMap { account in (0..<work[account].chunks).map { (account, $0) } }
        let next = Atomic<Int>(0)
        let results = Mutex<(verdicts: [AccountVerdict?], done: Int, guessable: Int)>(([AccountVerdict?](repeating: nil, count: entries.count), 0, 0))
        DispatchQueue.concurrentPerform(iterations: min(self.jobs, max(1, units.count))) { _ in
            let crypt = CryptBuffer()
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < units.count else { return }
                let (account, chunk) = units[index]
                guard let verdict = self.work(on: work[account], chunk: chunk, crypt: crypt) else { continue }
                results.withLock { state in
                    state.verdicts[account] = verdict
                    state.done += 1
                    if case .guessable = verdict.outcome { state.guessable += 1 }
                    progress(state.done, state.guessable)
                }
            }
        }
        return results.withLock { $0.verdicts.map { $0! } }
    }

    /// Tries one chunk of an account's candidates; the account's verdict when this was its last chunk.
    func work(on account: AccountWork, chunk: Int, crypt: CryptBuffer) -> AccountVerdict? {
        let clock = ContinuousClock()
        let started = account.state.withLock { state in
            if state.started == nil { state.started = clock.now }
            return state.started!
        }
        var tried = 0
        var outOfTime = false
        if let stored = account.stored {
            let deadline = started + self.timePerAccount
            let range = chunk * self.chunkSize..<min(account.candidates.count, (chunk + 1) * self.chunkSize)
            for index in range {
                if index > account.match.load(ordering: .relaxed) { break }  // an earlier one matched
                if clock.now >= deadline && !(index == 0 && tried == 0) {
                    outOfTime = true
                    break
                }
                tried += 1
                if stored.matches(account.candidates[index].password, crypt: crypt) {
                    account.match.min(index, ordering: .relaxed)
                    break
                }
            }
        }
        let (finished, totalTried, anyOutOfTime) = account.state.withLock { state in
            state.tried += tried
            state.chunksDone += 1
            state.outOfTime = state.outOfTime || outOfTime
            return (state.chunksDone == account.chunks, state.tried, state.outOfTime)
        }
        guard finished else { return nil }
        return self.verdict(account, tried: totalTried, outOfTime: anyOutOfTime, seconds: Self.seconds(clock.now - started))
    }

    func verdict(_ account: AccountWork, tried: Int, outOfTime: Bool, seconds: Double) -> AccountVerdict {
        let entry = account.entry
        let outcome: AccountVerdict.Outcome
        switch entry.password {
        case .open(let rule): outcome = .guessable(rule, password: "")
        case .skipped(let why): outcome = .skipped(why)
        case .unreadable(let why): outcome = .unreadable(why)
        case .stored:
            let match = account.match.load(ordering: .relaxed)
            if match != Int.max {
                outcome = .guessable(account.candidates[match].rule, password: account.candidates[match].password)
            } else {
                outcome = outOfTime ? .unfinished(of: account.candidates.count) : .notGuessed
            }
        }
        return AccountVerdict(username: entry.username, line: entry.line, scheme: account.stored?.schemeName,
                              outcome: outcome, tried: tried, seconds: account.stored == nil ? 0 : seconds)
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
