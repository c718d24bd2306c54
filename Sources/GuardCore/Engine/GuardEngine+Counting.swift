// GuardEngine: counting an attempt's outcome. A failure is counted in the windows of the
// keys it concerns (by what it was, see Counting) and earns what the limits say: a tarpit,
// a refusal, bans, alerts; a success makes a known place and may raise its own alerts.

import Foundation

extension GuardEngine {
    /// What a counted guess is, and so where it counts.
    enum Counting {
        /// The backend checked the password and said no: everywhere.
        case checked
        /// Refused here before the backend saw it (a denied username): everywhere.
        case refusedHere
        /// Refused here for the client's doing (a locked username, the pair limit): the client
        /// and its prefix, not the username (hammering a lock must not stretch it).
        case refusedForClient
        /// Refused here because the client's budget is spent: the client only (which bans it).
        case budgetSpent
        /// The backend had the credentials but gave no verdict: the client and the pair only.
        case unverified

        var countsUsername: Bool { self == .checked || self == .refusedHere }
        var countsPrefix: Bool { self != .budgetSpent && self != .unverified }
    }

    /// Counts a failure (reported by a source, refused here, or unverified) and issues what it
    /// earns. Refusals here count for the network prefix only while the client is not banned
    /// yet (`check` refuses banned clients before counting), and a spent budget not at all:
    /// one persistent address must not get its neighbours banned.
    mutating func recordFailure(_ attempt: AuthAttempt, locallyRefused: [Reason], counting: Counting) -> Decision {
        var decision = Decision(verdict: .refuse, reasons: locallyRefused)
        if self.isTrusted(attempt.client) {
            decision.reasons.append(.trustedNetwork)
            return decision
        }
        let now = attempt.time
        let seconds = now.seconds
        let unverified = counting == .unverified
        if unverified { decision.reasons.append(.unverifiedGuess) } else { self.noteVolume(at: now, into: &decision) }
        let user = self.normalize(attempt.username)
        let userHash = fnv1a(user.utf8)
        let client = self.clientKey(attempt.client)
        let prefix = self.prefixKey(attempt.client)
        let heavy = attempt.credential.isDefaultPassword || DefaultCredentials.isDefaultNormalizedUsername(user)
            || self.deniedUsernames.contains(user)
        let weight = UInt16(clamping: heavy ? max(1, self.policy.credentials.defaultCredentialWeight) : 1)
        let shortSlot = self.short.slot(seconds)
        let longSlot = self.long.slot(seconds)
        let shortSeconds = self.shortSeconds
        let longSeconds = self.longSeconds
        let hash = attempt.credential.passwordHash

        // The client, and the (client, username) pair inside it.
        let (ip, _) = self.clients.update(client, make: ClientRecord.init) { record -> (short: Int, long: Int, users: Int, repeated: Bool, turnedAway: Bool) in
            let i = record.pairSlot(userHash)
            if seconds &- record.pairs[i].lastFailure > shortSeconds {
                record.pairs[i].failures = 0
                record.pairs[i].hashes = InlineArray(repeating: .max)
            }
            var repeated = false
            if let hash, record.pairs[i].hasSeen(hash) {
                // A retry of a password already counted neither counts nor prolongs the pair's block.
                repeated = true
            } else {
                record.pairs[i].failures &+= 1
                if let hash { record.pairs[i].remember(hash) }
                record.pairs[i].lastFailure = seconds
            }
            if !repeated {
                record.failuresShort.add(weight, slot: shortSlot)
                record.failuresLong.add(weight, slot: longSlot)
            }
            let users = unverified ? Int(record.userCount) : record.noteUser(userHash, now: seconds, window: longSeconds)
            let turnedAway = record.lastTurnedAway != 0 && seconds &- record.lastTurnedAway <= shortSeconds
            return (record.failuresShort.total(slot: shortSlot), record.failuresLong.total(slot: longSlot), users, repeated, turnedAway)
        }
        if ip.repeated {
            // One stale password retried (a phone, a misconfigured client) is not a new guess.
            decision.reasons.append(.repeatedPassword)
            return decision
        }
        if heavy {
            let reason: Reason = self.deniedUsernames.contains(user) ? .deniedUsername : .defaultCredential
            if !decision.reasons.contains(reason) { decision.reasons.append(reason) }
        }
        let clientHash = client.stableHash
        let net: (short: Int, long: Int, clients: Int)
        if counting.countsPrefix {
            let cap = min(self.policy.limits.prefixMinClients, PrefixRecord.clientsKept)
            net = self.prefixes.update(prefix.address, make: PrefixRecord.init) { record -> (short: Int, long: Int, clients: Int) in
                record.failuresShort.add(weight, slot: shortSlot)
                record.failuresLong.add(weight, slot: longSlot)
                let clients = record.noteClient(clientHash, now: seconds, window: longSeconds, cap: cap)
                return (record.failuresShort.total(slot: shortSlot), record.failuresLong.total(slot: longSlot), clients)
            }.result
        } else {
            net = (0, 0, 0)
        }
        let cap = self.policy.limits.ipsPerUsername + 1
        let account: (short: Int, long: Int, clients: Int)
        if counting.countsUsername {
            account = self.users.update(user, make: UserRecord.init) { record -> (short: Int, long: Int, clients: Int) in
                record.failuresShort.add(weight, slot: shortSlot)
                record.failuresLong.add(weight, slot: longSlot)
                let clients = record.noteClient(clientHash, now: seconds, window: longSeconds, cap: cap)
                return (record.failuresShort.total(slot: shortSlot), record.failuresLong.total(slot: longSlot), clients)
            }.result
        } else {
            account = (0, 0, 0)
        }

        let limits = self.policy.limits
        var ipReason: Reason?
        if ip.short > limits.ipFailuresShort || ip.long > limits.ipFailuresLong {
            ipReason = .ipFailures
        } else if ip.turnedAway && (ip.short >= limits.ipFailuresShort || ip.long >= limits.ipFailuresLong) {
            // The budget is spent by this failure, and the client already asked for more
            // checks than it had (told to try again later): that was its "one more".
            ipReason = .guessBudget
        } else if ip.users > limits.usernamesPerIP {
            ipReason = .spraying
        }
        if let ipReason, let ban = self.issueBan(.ip(client), reason: ipReason, base: self.policy.bans.ip, now: now) {
            decision.bans.append(ban)
            decision.reasons.append(ipReason)
        }
        // A prefix is banned for what several of its addresses did, never for one of them.
        if net.short > limits.prefixFailuresShort || net.long > limits.prefixFailuresLong,
            net.clients >= limits.prefixMinClients,
            let ban = self.issueBan(.prefix(prefix), reason: .prefixFailures, base: self.policy.bans.prefix, now: now)
        {
            decision.bans.append(ban)
            decision.reasons.append(.prefixFailures)
        }
        var userReason: Reason?
        if account.clients > limits.ipsPerUsername {
            userReason = .distributedAttack
        } else if account.short > limits.usernameFailuresShort || account.long > limits.usernameFailuresLong {
            userReason = .usernameFailures
        }
        if let userReason,
            let ban = self.issueBan(.username(user), reason: userReason, base: self.policy.bans.username, now: now, exemptKnownPlaces: true)
        {
            decision.bans.append(ban)
            decision.reasons.append(userReason)
            decision.alerts.append(
                Alert(
                    kind: .distributedAttack, severity: .warning, time: now, username: user, client: attempt.client,
                    message: userReason == .distributedAttack
                        ? "username \(user) is attacked from \(account.clients) or more addresses; locked for unknown places until \(ban.until)"
                        : "username \(user) failed \(account.short) times in \(self.policy.shortWindow.compactText); locked for unknown places until \(ban.until)"))
        }
        return decision
    }

    mutating func recordSuccess(_ attempt: AuthAttempt) -> Decision {
        let now = attempt.time
        let seconds = now.seconds
        let user = self.normalize(attempt.username)
        let client = self.clientKey(attempt.client)
        let prefix = self.prefixKey(attempt.client)
        let trusted = self.isTrusted(attempt.client)

        // The weak-credential firewall: a default password accepted by the backend is refused.
        if attempt.credential.isDefaultPassword && !trusted {
            var decision = Decision(verdict: .refuse, reasons: [.weakCredentialAccepted])
            let lock = self.issueBan(
                .username(user), reason: .weakCredentialAccepted, base: self.policy.bans.weakCredentialLock, now: now,
                exemptKnownPlaces: false, escalate: false)
            if let lock { decision.bans.append(lock) }
            decision.alerts.append(
                Alert(
                    kind: .weakCredentialAccepted, severity: .critical, time: now, username: user, client: attempt.client,
                    message: "the mail server accepted a default password for account \(user) from \(attempt.client); "
                        + "the login was refused and the account is locked for untrusted networks. Change its password."))
            return decision
        }

        var decision = Decision(verdict: .allow, reasons: trusted ? [.trustedNetwork] : [])
        let shortSlot = self.short.slot(seconds)
        let userHash = fnv1a(user.utf8)
        let clientFailures = self.clients.modifyIfPresent(client) { record -> Int in
            if let i = record.pairIndex(userHash) { record.pairs[i] = PairEntry() }
            return record.failuresShort.total(slot: shortSlot)
        } ?? 0
        let prefixFailures = self.prefixes.peek(prefix.address)?.failuresShort.total(slot: shortSlot) ?? 0
        let threshold = self.policy.compromiseAfterFailures
        if !trusted && threshold > 0 && (clientFailures >= threshold || prefixFailures >= threshold * 4) {
            decision.reasons.append(.possibleCompromise)
            decision.alerts.append(
                Alert(
                    kind: .possibleCompromise, severity: .critical, time: now, username: user, client: attempt.client,
                    message: "possible compromised account: \(user) logged in from \(attempt.client) after "
                        + "\(clientFailures) failures from that address and \(prefixFailures) from \(prefix) in \(self.policy.shortWindow.compactText)"))
            // A place that guessed its way in does not become a known place.
            return decision
        }
        let until = UInt32(clamping: Int64(seconds) + self.policy.knownPlaceDuration.wholeSeconds)
        self.knownPlaces.update(PlaceKey(place: client, isPrefix: false, user: user), make: { until }) { $0 = until }
        self.knownPlaces.update(PlaceKey(place: prefix.address, isPrefix: true, user: user), make: { until }) { $0 = until }
        return decision
    }

    func isKnownPlace(client: IPAddress, prefix: IPAddress, user: String, now: UInt32) -> Bool {
        if self.knownPlaces.count == 0 { return false }
        if let until = self.knownPlaces.peek(PlaceKey(place: client, isPrefix: false, user: user)), until > now { return true }
        if let until = self.knownPlaces.peek(PlaceKey(place: prefix, isPrefix: true, user: user)), until > now { return true }
        return false
    }

    /// True when the client has logged in as this user from here, or from its network, recently.
    public func isKnownPlace(_ address: IPAddress, username: String, now: Timestamp) -> Bool {
        self.isKnownPlace(
            client: self.clientKey(address), prefix: self.prefixKey(address).address, user: self.normalize(username), now: now.seconds)
    }
}
