// What the guard answers Postfix. At every protocol state a banned client gets the ban
// action (421 by default: Postfix disconnects it), so a setup with only the log watcher or
// the Dovecot policy still stops banned clients at Postfix. With `sasl_username` present:
// a locked account may not start mail, and each message and recipient is counted against
// the user's sending limits; past one, DEFER_IF_PERMIT.
//
// Postfix asks once per restriction list that names the policy service: the same RCPT can
// arrive twice (client and recipient restrictions, with smtpd_delay_reject = yes). Each
// transaction (`instance`) remembers its last counted recipient so it counts once.

import GuardCore
import Synchronization

public final class PostfixPolicy: Sendable {
    public let guardEngine: Guard
    let banAction: String
    private let transactions = Mutex<[String: Transaction]>([:])
    static let maxTransactions = 100_000
    static let transactionLifetime: Duration = .seconds(3600)

    struct Transaction {
        var started: Timestamp
        var messageCounted = false
        /// recipient_count and recipient of the last RCPT counted.
        var lastRecipient: (count: String, address: String)?
    }

    public init(guardEngine: Guard, configuration: PostfixPolicyConfiguration) {
        self.guardEngine = guardEngine
        self.banAction = configuration.banAction
    }

    /// The action for one request (without `action=`).
    public func answer(_ request: PostfixPolicyRequest) -> String {
        let client = request["client_address"].flatMap { IPAddress($0) }
        if let client, self.guardEngine.connectionBan(for: client) != nil { return self.banAction }
        let username = request["sasl_username"] ?? ""
        guard !username.isEmpty, self.guardEngine.policy.sending.enabled else { return "DUNNO" }
        let now = self.guardEngine.clock.now()
        let instance = request["instance"] ?? ""
        switch request.state {
        case "MAIL":
            if let lock = self.guardEngine.sendingLock(for: username) {
                return "DEFER_IF_PERMIT " + SendingDecision(allowed: false, lock: lock).text
            }
            return "DUNNO"
        case "RCPT":
            let recipient = (request["recipient_count"] ?? "", request["recipient"] ?? "")
            let (countMessage, countRecipient) = self.transactions.withLock { table -> (Bool, Bool) in
                var transaction = table[instance] ?? Transaction(started: now)
                if let last = transaction.lastRecipient, last == recipient, !instance.isEmpty { return (false, false) }
                let countMessage = !transaction.messageCounted
                transaction.messageCounted = true
                transaction.lastRecipient = recipient
                if !instance.isEmpty { Self.store(transaction, as: instance, in: &table, now: now) }
                return (countMessage, true)
            }
            if countMessage, let refused = self.refusal(username, client: client, kind: .message, now: now) { return refused }
            if countRecipient, let refused = self.refusal(username, client: client, kind: .recipients(1), now: now) { return refused }
            return "DUNNO"
        case "END-OF-MESSAGE":
            let transaction = self.transactions.withLock { $0.removeValue(forKey: instance) }
            guard transaction?.messageCounted != true else { return "DUNNO" }
            // Asked only at the end of data: count the whole message now.
            if let refused = self.refusal(username, client: client, kind: .message, now: now) { return refused }
            let recipients = Int(request["recipient_count"] ?? "") ?? 1
            if let refused = self.refusal(username, client: client, kind: .recipients(max(1, recipients)), now: now) { return refused }
            return "DUNNO"
        default:
            return "DUNNO"
        }
    }

    private func refusal(_ username: String, client: IPAddress?, kind: SendingRequest.Kind, now: Timestamp) -> String? {
        let decision = self.guardEngine.checkSending(SendingRequest(time: now, username: username, client: client, kind: kind, source: .postfixPolicy))
        return decision.allowed ? nil : "DEFER_IF_PERMIT " + decision.text
    }

    private static func store(_ transaction: Transaction, as instance: String, in table: inout [String: Transaction], now: Timestamp) {
        if table[instance] == nil && table.count >= Self.maxTransactions {
            table = table.filter { now - $0.value.started < Self.transactionLifetime }
            if table.count >= Self.maxTransactions { return }
        }
        table[instance] = transaction
    }
}
