// The checks that involve more than one key: problems that refuse a start, and warnings
// about settings that are valid but likely to hurt.

extension GuardConfiguration {
    /// What is valid but likely to hurt: `config check` prints these, `run` logs them at start.
    public var warnings: [(key: String, message: String)] {
        var warnings: [(String, String)] = []
        if self.proxy.identity == .none {
            warnings.append((
                "backend.identity",
                "is none: the mail server sees every client as the guard's own address, so its per-address limits and penalties "
                    + "(Dovecot's auth penalty, Postfix's anvil) slow or refuse every user once a bot guesses through the guard, "
                    + "and its logs name no client; use xclient (Postfix: smtpd_authorized_xclient_hosts) or proxy-v2, or exempt "
                    + "the guard's address from those penalties"
            ))
        }
        return warnings
    }

    /// Checks between keys, after every key is read. Returns (key, message) pairs.
    public func crossKeyProblems() -> [(key: String, message: String)] {
        var problems: [(String, String)] = []
        if self.policy.longWindow < self.policy.shortWindow {
            problems.append(("guard.long_window", "must be at least guard.short_window (\(self.policy.shortWindow.compactText))"))
        }
        if self.policy.bans.max < self.policy.bans.ip {
            problems.append(("guard.bans.max", "must be at least guard.bans.ip (\(self.policy.bans.ip.compactText))"))
        }
        if self.policy.tarpit.max < self.policy.tarpit.initial {
            problems.append(("guard.tarpit.max", "must be at least guard.tarpit.initial (\(self.policy.tarpit.initial.compactText))"))
        }
        if !self.proxy.failureReply.hasPrefix("5") {
            problems.append(("smtp.failure_reply", "must be a permanent (5xx) reply"))
        }
        if !self.proxy.tempFailureReply.hasPrefix("4") {
            problems.append(("smtp.temp_failure_reply", "must be a temporary (4xx) reply"))
        }
        if self.proxy.mechanisms.isEmpty {
            problems.append(("smtp.auth_mechanisms", "needs at least one mechanism"))
        }
        if self.proxy.tls.certificate.isEmpty != self.proxy.tls.key.isEmpty {
            problems.append(
                self.proxy.tls.key.isEmpty
                    ? ("tls.certificate", "needs tls.key (the certificate's private key)") : ("tls.key", "needs tls.certificate"))
        }
        if self.proxy.backendTLS == .tls && (self.proxy.identity == .proxyV1 || self.proxy.identity == .proxyV2) {
            problems.append(("backend.identity", "a PROXY header cannot be sent to a backend that speaks TLS from the first byte (backend.tls: tls); use backend.tls: starttls or none"))
        }
        if !self.proxy.listenTLS.isEmpty && !self.proxy.tls.isConfigured {
            problems.append(("listen_tls", "implicit TLS listeners need tls.certificate and tls.key"))
        }
        if self.state.retention < self.policy.longWindow {
            problems.append(("state.retention", "must be at least guard.long_window (\(self.policy.longWindow.compactText)): the counts are rebuilt from it"))
        }
        if self.proxy.maxConnectionsPerIP > self.proxy.maxConnections {
            problems.append(("smtp.max_connections_per_ip", "must not exceed smtp.max_connections (\(self.proxy.maxConnections))"))
        }
        if self.watch.sources.contains(where: { $0.formats.contains("patterns") }) && self.watch.patterns.isEmpty {
            problems.append(("watch.patterns", "a source uses the \"patterns\" format: give at least one pattern"))
        }
        if !self.dovecotPolicy.listen.isEmpty && self.dovecotPolicy.apiKey == nil && self.dovecotPolicy.basicAuth.isEmpty {
            problems.append(("dovecot_policy.listen", "the endpoint must be protected: set dovecot_policy.api_header or dovecot_policy.basic_auth (and the same in Dovecot)"))
        }
        if !self.alerts.webhooks.isEmpty && self.alerts.webhookSecret.count < 16 {
            problems.append(("alerts.webhook_secret", "webhooks are configured: set a secret of at least 16 characters, so that receivers can check the signature"))
        }
        let groups = Set(self.policy.sending.groups.map(\.name))
        for override in self.policy.sending.overrides {
            if case .group(let name) = override.selector, !groups.contains(name) {
                problems.append(("sending.overrides", "\"\(override.selector)\" names a group that sending.groups does not define"))
            }
        }
        if self.firewall.backend == .command && self.firewall.banCommand.isEmpty {
            problems.append(("firewall.ban_command", "firewall.backend is command: give the command to run for a ban"))
        }
        problems += ListenerPlan(self).clashes
        problems += self.placeholderSecrets
        return problems
    }
}
