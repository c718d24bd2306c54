// The name of every metric the guard records, in one place: each module records its own
// series through swift-metrics (the proxy, the policy servers, the store, the watcher, the
// firewall, the webhooks) and the admin server exposes them all at /metrics, so the names
// cannot live in any one of those modules. Labels take only a few fixed values (outcomes,
// mechanisms, sources, scopes, reasons, kinds): never a username, an address or anything a
// client chose. Names only: no metrics library here (GuardCore does no I/O).

public enum MetricNames {
    public static let attempts = "smtpguard_auth_attempts_total"
    public static let decisions = "smtpguard_decisions_total"
    public static let bansIssued = "smtpguard_bans_issued_total"
    public static let activeBans = "smtpguard_active_bans"
    public static let alerts = "smtpguard_alerts_total"
    public static let sendingRefusals = "smtpguard_sending_refusals_total"
    public static let tarpitDelay = "smtpguard_tarpit_delay_seconds"
    public static let backendErrors = "smtpguard_backend_errors_total"
    public static let policyRequest = "smtpguard_policy_request_duration_seconds"
    public static let storeWrite = "smtpguard_store_write_duration_seconds"
    public static let webhookDeliveries = "smtpguard_webhook_deliveries_total"
    // The log watcher's and the firewall's own series (no HELP line on /metrics yet).
    public static let watchLines = "smtpguard_watch_lines_total"
    public static let watchSourceSilent = "smtpguard_watch_source_silent"
    public static let firewallFailures = "smtpguard_firewall_failures_total"
    public static let firewallRestoredBans = "smtpguard_firewall_restored_bans_total"
    public static let firewallRepairs = "smtpguard_firewall_repairs_total"

    /// Each metric's HELP text, as /metrics shows it (and README's metrics table).
    public static let help: [(name: String, labels: String, help: String)] = [
        (attempts, "outcome, mechanism, source", "AUTH attempts settled, by outcome (success, failure, temp_failure, abandoned), SASL mechanism and the source that saw them (proxy, dovecot_policy, postfix_policy, log_watch, windows)."),
        (decisions, "decision", "The engine's decisions on attempts: allow, refuse, temp_fail."),
        (bansIssued, "scope, reason", "Bans and locks issued, by scope (ip, prefix, username) and reason."),
        (activeBans, "scope", "Bans and locks in force now, by scope."),
        (alerts, "kind", "Alerts raised, by kind (weak_credential_accepted, possible_compromise, distributed_attack, attack_volume, backend_penalty, source_silent)."),
        (sendingRefusals, "", "Messages or recipients refused to authenticated users (sending limits, locked accounts)."),
        (tarpitDelay, "", "Delays the tarpit imposed on AUTH attempts (only attempts that were delayed)."),
        (backendErrors, "", "Proxy sessions ended by trouble with the backend mail server (unreachable, timed out, protocol error)."),
        (policyRequest, "server", "Time to answer a policy request, by server (dovecot, postfix)."),
        (storeWrite, "", "Time to write one batch of events to the state (SQLite or PostgreSQL)."),
        (webhookDeliveries, "result", "Alert webhook deliveries, by result (delivered, retried, failed, dropped)."),
    ]

    /// Histogram buckets of the timers.
    public static let buckets: [String: [Duration]] = [
        tarpitDelay: [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32), .seconds(64)],
        policyRequest: [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1),
        ],
        storeWrite: [
            .microseconds(250), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ],
    ]
}
