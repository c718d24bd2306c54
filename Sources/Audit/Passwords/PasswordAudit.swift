// The password audit: for each account, the candidates of PasswordRules, most likely first,
// against its stored hash, until one matches or the account's time is up. Accounts are shared
// out to one worker thread per core (crypt(3) is CPU work that must not sit on Swift's
// cooperative pool); each worker has its own crypt buffer.

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

    public init(rules: PasswordRules, jobs: Int, timePerAccount: Duration) {
        self.rules = rules
        self.jobs = max(1, jobs)
        self.timePerAccount = timePerAccount
    }

    /// Audits `entries`; `progress(done, guessable)` is called after each account (from the
    /// worker threads, one at a time). Verdicts come back in the order of the entries.
    public func run(_ entries: [AccountEntry], progress: @Sendable (_ done: Int, _ guessable: Int) -> Void = { _, _ in }) -> [AccountVerdict] {
        let next = Atomic<Int>(0)
        let results = Mutex<(verdicts: [AccountVerdict?], done: Int, guessable: Int)>(([AccountVerdict?](repeating: nil, count: entries.count), 0, 0))
        DispatchQueue.concurrentPerform(iterations: min(self.jobs, max(1, entries.count))) { _ in
            let crypt = CryptBuffer()
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < entries.count else { return }
                let verdict = self.audit(entries[index], crypt: crypt)
                results.withLock { state in
                    state.verdicts[index] = verdict
                    state.done += 1
                    if case .guessable = verdict.outcome { state.guessable += 1 }
                    progress(state.done, state.guessable)
                }
            }
        }
        return results.withLock { $0.verdicts.map { $0! } }
    }

    func audit(_ entry: AccountEntry, crypt: CryptBuffer) -> AccountVerdict {
        let verdict = { (scheme: String?, outcome: AccountVerdict.Outcome, tried: Int, seconds: Double) in
            AccountVerdict(username: entry.username, line: entry.line, scheme: scheme, outcome: outcome, tried: tried, seconds: seconds)
        }
        switch entry.password {
        case .open(let rule): return verdict(nil, .guessable(rule, password: ""), 0, 0)
        case .skipped(let why): return verdict(nil, .skipped(why), 0, 0)
        case .unreadable(let why): return verdict(nil, .unreadable(why), 0, 0)
        case .stored(let stored):
            let clock = ContinuousClock()
            let start = clock.now
            let deadline = start + self.timePerAccount
            let candidates = self.rules.candidates(for: entry.username)
            var tried = 0
            for candidate in candidates {
                if tried > 0, clock.now >= deadline {
                    return verdict(stored.schemeName, .unfinished(of: candidates.count), tried, Self.seconds(clock.now - start))
                }
                tried += 1
                if stored.matches(candidate.password, crypt: crypt) {
                    return verdict(stored.schemeName, .guessable(candidate.rule, password: candidate.password), tried, Self.seconds(clock.now - start))
                }
            }
            return verdict(stored.schemeName, .notGuessed, tried, Self.seconds(clock.now - start))
        }
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
