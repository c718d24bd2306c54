// The table of every key: its path, help text, default (rendered from the value) and how a
// value is read into the configuration. Reading a file by it, and rendering the defaults file
// and the README reference from it: ConfigurationRendering.swift; the checks that involve
// more than one key: ConfigurationChecks.swift.

extension GuardConfiguration {
    public static var keys: [ConfigurationKey] {
        let reply: (String) -> (String) -> String? = { kind in
            { text in
                let code = text.prefix(3)
                guard code.count == 3, code.allSatisfy({ $0.isASCII && $0.isNumber }), text.count == 3 || text.dropFirst(3).first == " " else {
                    return "must start with a three-digit SMTP code and a space, e.g. \"\(kind)\""
                }
                return nil
            }
        }
        return [
            .hostPorts(
                "listen", "Plain SMTP listeners (ports 25 and 587); STARTTLS is offered on them when tls.certificate is set (repeat --listen to override).",
                \.proxy.listen),
            .hostPorts(
                "listen_tls", "Implicit TLS listeners (RFC 8314, port 465): TLS from the first byte. Needs tls.certificate.",
                \.proxy.listenTLS, allowEmpty: true),
            .string(
                "tls.certificate", "PEM file with the guard's certificate, then its intermediates; empty: no TLS. Reloaded on SIGHUP.",
                \.proxy.tls.certificate),
            .string("tls.key", "PEM file with the certificate's private key. Reloaded on SIGHUP.", \.proxy.tls.key),
            .choice("tls.min_version", "Lowest TLS version accepted from clients: 1.2 or 1.3.", \.proxy.tls.minimumVersion),
            .duration(
                "tls.handshake_timeout", "How long a client may take to complete the TLS handshake.", \.proxy.tls.handshakeTimeout,
                min: .milliseconds(100), max: .seconds(600)),
            .bool(
                "auth.require_tls",
                "AUTH is offered and accepted only inside TLS; before it, AUTH gets 538 5.7.11 and no mechanism is shown. Without a certificate this refuses AUTH everywhere.",
                \.proxy.requireTLS),
            .hostPort("backend.address", "The real mail server the guard protects.", \.proxy.backend),
            .choice(
                "backend.identity",
                "How the backend learns the real client address: none, xclient (Postfix), proxy-v1 or proxy-v2 (HAProxy PROXY protocol).",
                \.proxy.identity),
            .choice(
                "backend.tls", "TLS to the backend: none, starttls (after its greeting, before anything else) or tls (from the first byte).",
                \.proxy.backendTLS),
            .bool("backend.tls_verify", "Verify the backend's certificate chain and name when TLS is used to it.", \.proxy.backendTLSVerify),
            .string("backend.tls_ca", "PEM file of the CAs trusted for the backend's certificate; empty: the system's.", \.proxy.backendTLSCA),
            .string(
                "backend.tls_server_name", "Name the backend's certificate must carry (and SNI sent); empty: the host of backend.address.",
                \.proxy.backendTLSServerName),
            .duration("backend.connect_timeout", "How long to wait for the backend to accept a connection.", \.proxy.connectTimeout, min: .milliseconds(100)),
            .duration("backend.reply_timeout", "How long the backend may take to answer a command.", \.proxy.replyTimeout, min: .seconds(1)),
            .duration(
                "backend.data_timeout", "How long the backend may take to answer the end of a message (RFC 5321 asks for 10m).",
                \.proxy.dataTimeout, min: .seconds(1)),
            .string(
                "smtp.hostname", "Name the guard greets with and answers EHLO with; empty: this host's name.", \.proxy.hostname,
                validate: { $0.contains(" ") ? "must not contain spaces" : nil }),
            .string("smtp.banner", "Greeting text after \"220 \"; empty: \"<hostname> ESMTP\". The backend's own banner never reaches clients.", \.proxy.banner),
            .int("smtp.ban_reply", "Reply code for a banned client at connect: 554 (go away) or 421 (try later).", \.proxy.banReplyCode, 421...554, only: [421, 554]),
            .string(
                "smtp.failure_reply", "The one reply every failed AUTH gets, whether the backend or the guard decided.", \.proxy.failureReply,
                validate: reply("535 5.7.8 Authentication credentials invalid")),
            .string(
                "smtp.temp_failure_reply", "Reply when AUTH cannot be decided now (rate limit, backend trouble).", \.proxy.tempFailureReply,
                validate: reply("454 4.7.0 Temporary authentication failure")),
            .mechanisms("smtp.auth_mechanisms", "SASL mechanisms offered and accepted (PLAIN, LOGIN, CRAM-MD5), if the backend offers them too.", \.proxy.mechanisms),
            .networks("smtp.auth_networks", "Clients to whom AUTH is offered at all; others never see it in EHLO and are refused.", \.proxy.authNetworks),
            .networks(
                "smtp.haproxy_trusted_networks",
                "Load balancers (HAProxy …) in front of the guard: their connections must begin with a PROXY protocol v1 or v2 header, whose client address the guard then uses. None by default.",
                \.proxy.haproxyTrustedNetworks),
            .int("smtp.max_connections", "Open client connections in total.", \.proxy.maxConnections, 1...1_000_000),
            .int("smtp.max_connections_per_ip", "Open client connections per client address.", \.proxy.maxConnectionsPerIP, 1...1_000_000),
            .duration("smtp.command_timeout", "How long a client may stay silent between commands.", \.proxy.commandTimeout, min: .seconds(1)),
            .int("smtp.max_command_line", "Longest command line, CRLF included (RFC 5321: 512).", \.proxy.maxCommandLine, 512...65536),
            .int("smtp.max_auth_line", "Longest AUTH line or SASL response (Postfix: 12288).", \.proxy.maxAuthLine, 512...1_048_576),
            .int("smtp.max_data_line", "Longest message line, CRLF included (RFC 5321: 1000).", \.proxy.maxDataLine, 1000...1_048_576),
            .int("smtp.max_errors", "Protocol errors a client may make before it is disconnected.", \.proxy.maxErrors, 1...1000),
            .int(
                "smtp.max_junk_commands", "Commands that move no mail (NOOP, RSET, VRFY, EXPN, HELP, unknown) before the client is disconnected.",
                \.proxy.maxJunkCommands, 1...100_000),
            .int("smtp.max_message_size", "Largest message in bytes taken through DATA (SIZE shown to clients is at most this).", \.proxy.maxMessageSize, 1024...2_147_483_647),
            .int(
                "smtp.data_min_rate", "Bytes per second a client must send during DATA, averaged over 30s; slower ones are disconnected. 0: off.",
                \.proxy.dataMinRate, 0...100_000_000),
            .duration("smtp.session_timeout", "The longest a client session may last, whatever it does.", \.proxy.sessionTimeout, min: .seconds(10)),
            .int("smtp.threads", "Event-loop threads serving connections; 0: one per CPU core.", \.proxy.threads, 0...256),

            .networks(
                "guard.trusted_networks", "Networks never banned, tarpitted or locked out (office, VPN). None by default.",
                \.policy.trustedNetworks),
            .int("guard.ipv6_client_prefix", "IPv6 clients are counted per this prefix (a host usually owns a /64).", \.policy.ipv6ClientPrefix, 32...128),
            .int("guard.ipv4_network_prefix", "IPv4 network prefix counted and banned as one.", \.policy.ipv4NetworkPrefix, 8...32),
            .int("guard.ipv6_network_prefix", "IPv6 network prefix counted and banned as one.", \.policy.ipv6NetworkPrefix, 16...128),
            .duration("guard.short_window", "The short counting window.", \.policy.shortWindow, min: .seconds(6)),
            .duration("guard.long_window", "The long counting window: slow attacks spread over hours still add up.", \.policy.longWindow, min: .seconds(6)),
            .int(
                "guard.max_tracked_keys", "Entries kept per table (clients, networks, usernames, known places); the least recently used go first, active bans never.",
                \.policy.maxTrackedKeys, 1000...100_000_000),

            .int(
                "guard.limits.ip_failures_short",
                "The guess budget: password checks one client may land at the backend in the short window (failures, and 4xx answers after its credentials). Attempts in flight count against it; the next attempt is refused here and bans the client.",
                \.policy.limits.ipFailuresShort, 1...100_000),
            .int(
                "guard.limits.ip_failures_long", "The guess budget over the long window, as guard.limits.ip_failures_short.",
                \.policy.limits.ipFailuresLong, 1...100_000),
            .int("guard.limits.prefix_failures_short", "Failures from one network prefix in the short window; one more bans the prefix.", \.policy.limits.prefixFailuresShort, 1...1_000_000),
            .int("guard.limits.prefix_failures_long", "Failures from one network prefix in the long window; one more bans the prefix.", \.policy.limits.prefixFailuresLong, 1...1_000_000),
            .int(
                "guard.limits.prefix_min_clients",
                "Distinct addresses of a network prefix that must have failed (long window) before the prefix can be banned, so that one address never bans its neighbours (1 to 8).",
                \.policy.limits.prefixMinClients, 1...8),
            .int(
                "guard.limits.username_failures_short", "Failures on one username in the short window; one more locks it for unknown places.",
                \.policy.limits.usernameFailuresShort, 1...1_000_000),
            .int(
                "guard.limits.username_failures_long", "Failures on one username in the long window; one more locks it for unknown places.",
                \.policy.limits.usernameFailuresLong, 1...1_000_000),
            .int("guard.limits.pair_failures", "Failures of one username from one client (short window) before that pair is refused.", \.policy.limits.pairFailures, 1...10_000),
            .int("guard.limits.usernames_per_ip", "Distinct usernames failing from one client (long window, spraying); one more bans it.", \.policy.limits.usernamesPerIP, 1...10_000),
            .int(
                "guard.limits.ips_per_username", "Distinct clients failing on one username (long window, a botnet); one more locks it for unknown places.",
                \.policy.limits.ipsPerUsername, 1...10_000),
            .int("guard.limits.attempts_per_ip", "AUTH attempts of any outcome from one client in the short window before it gets the temporary failure.", \.policy.limits.attemptsPerIP, 1...1_000_000),

            .int(
                "guard.credentials.default_credential_weight", "How much a failure with a default password or a default/denied username counts.",
                \.policy.credentials.defaultCredentialWeight, 1...100),
            .strings("guard.credentials.denied_usernames", "Usernames refused by the guard itself, never passed to the backend.", \.policy.credentials.deniedUsernames),
            .string(
                "guard.credentials.default_domain", "When set, a bare \"user\" is the same account as \"user@<default_domain>\"; when empty, \"user\" and \"user@domain\" are different accounts.",
                \.policy.credentials.defaultDomain),
            .int("guard.credentials.hash_bits", "Bits kept of the keyed password hash used to tell a retried password from a new guess.", \.policy.credentials.hashBits, 4...16),
            .duration("guard.known_places.remember_for", "How long a successful login makes (client, username) and (prefix, username) a known place.", \.policy.knownPlaceDuration),
            .int("guard.alerts.compromise_after_failures", "A success from a client with this many failures just before (or its prefix with 4×) raises a possible-compromise alert; 0 turns it off.", \.policy.compromiseAfterFailures, 0...100_000),

            .int("guard.tarpit.after_failures", "Failures from a client (short window) before its AUTH replies are delayed.", \.policy.tarpit.afterFailures, 0...100_000),
            .duration("guard.tarpit.initial", "First delay; 0s turns the tarpit off.", \.policy.tarpit.initial),
            .double("guard.tarpit.factor", "Each further failure multiplies the delay by this.", \.policy.tarpit.factor, 1...100),
            .duration("guard.tarpit.max", "Longest delay.", \.policy.tarpit.max, max: .seconds(600)),
            .duration(
                "guard.tarpit.min_refusal_delay", "Added to the tarpit for a refusal by the guard itself (locked account, denied username, blocked pair), so it answers no faster than a wrong password at the backend (Dovecot waits 2s by default).",
                \.policy.tarpit.minRefusalDelay, max: .seconds(60)),

            .duration("guard.bans.ip", "First ban of a client address.", \.policy.bans.ip, min: .seconds(1)),
            .duration("guard.bans.prefix", "First ban of a network prefix.", \.policy.bans.prefix, min: .seconds(1)),
            .duration("guard.bans.username", "First lock of a username for unknown places.", \.policy.bans.username, min: .seconds(1)),
            .duration("guard.bans.weak_credential_lock", "Lock of a username whose default password the backend accepted.", \.policy.bans.weakCredentialLock, min: .seconds(1)),
            .double("guard.bans.factor", "Each repeat offence multiplies the ban by this.", \.policy.bans.factor, 1...1000),
            .duration("guard.bans.max", "Longest ban.", \.policy.bans.max, min: .seconds(1)),
            .double("guard.bans.jitter", "Random spread of each ban, as a fraction or percentage (0.1 or 10%).", \.policy.bans.jitter, 0...1),
            .duration("guard.bans.remember_offenses", "How long a past ban counts towards escalation.", \.policy.bans.rememberOffenses),

            .string(
                "state.path", "SQLite file that keeps bans, attempts and alerts across restarts (created on first run); empty: memory only, lost on restart.",
                \.state.path),
            .string(
                "state.url",
                "postgres://user[:password]@host[:port]/database: keep state in PostgreSQL, shared with the other guards on it (bans and trusted networks reach them within a second, failures count together); empty: the SQLite file.",
                \.state.url,
                validate: { $0.isEmpty || $0.hasPrefix("postgres://") || $0.hasPrefix("postgresql://") ? nil : "must start with postgres://" }),
            .duration(
                "state.flush_interval", "How often queued events are written to the state file: the most a crash (even SIGKILL) can lose.",
                \.state.flushInterval, min: .milliseconds(50), max: .seconds(60)),
            .duration("state.retention", "How long attempts and alerts are kept in the state file.", \.state.retention, min: .seconds(3600)),
            .duration(
                "state.timeout",
                "PostgreSQL: the longest a connect or a query may take. Past it the connection is closed and opened again on the next use; decisions go on from memory and nothing queued is lost.",
                \.state.timeout, min: .seconds(1), max: .seconds(600)),
            .string("events.path", "Where one JSON line per AUTH attempt, ban, unban and alert goes: a file, \"-\" for standard output, empty for nowhere.", \.events.path),

            ConfigurationKey(
                path: "watch.sources",
                help: "Logs `smtpguard watch` reads, one per item: \"FORMAT[,FORMAT…] file:PATH | dir:DIRECTORY/PATTERN | stdin | journald[:unit=NAME,identifier=NAME] | syslog:udp|tcp:HOST:PORT\" (a journald source with several filters reads the lines that match any of them; syslog listens on a numeric address for forwarded messages, [::1] for IPv6); formats: postfix, dovecot, exim, exchange, events (the guard's own event log), windows (Windows Security events as Winlogbeat or NXLog JSON or Event XML), patterns.",
                render: { yamlList($0.watch.sources.map(\.description)) },
                apply: { config, value in
                    var sources: [WatchSource] = []
                    for text in try ConfigurationKey.list(value) { sources.append(try WatchSource(parsing: text)) }
                    config.watch.sources = sources
                }, isList: true),
            ConfigurationKey(
                path: "watch.patterns",
                help: "Regular expressions for the \"patterns\" format, matched against the whole message: a named group (?<address>…) and optionally (?<username>…).",
                render: { yamlList($0.watch.patterns) },
                apply: { config, value in
                    let patterns = try ConfigurationKey.list(value)
                    for (index, pattern) in patterns.enumerated() {
                        do {
                            _ = try Regex(pattern)
                        } catch {
                            throw ConfigValueError("item \(index + 1): not a valid regular expression: \(error)")
                        }
                        if !pattern.contains("(?<address>") { throw ConfigValueError("item \(index + 1): needs a named group (?<address>…)") }
                    }
                    config.watch.patterns = patterns
                }, isList: true),
            .string("watch.positions", "File where the watcher keeps how far it read each log, to resume after a restart; empty: start at the end each time.", \.watch.positions),
            .bool("watch.from_start", "Read a log from its start when no position is saved for it (default: from its end, as it is now).", \.watch.fromStart),
            .duration("watch.poll_interval", "How often the logs are checked for new lines.", \.watch.pollInterval, min: .milliseconds(10), max: .seconds(10)),
            .string("watch.journalctl", "The journalctl program for journald sources.", \.watch.journalctl),
            .duration(
                "watch.silence_alert",
                "A source that has read no line for this long raises a source_silent alert and shows as silent in /metrics (smtpguard_watch_source_silent) until it reads again: a log that moved, cannot be read, or a filter that matches nothing. 0s: never.",
                \.watch.silenceAlert),
            .int("watch.max_line_length", "Longer lines are cut to this many bytes.", \.watch.maxLineLength, 256...1_048_576),

            .choice(
                "firewall.backend",
                "Where the watcher's bans are enforced: nftables (a table with per-element timeouts), ipset (sets for your own iptables rules), iptables (a chain), command (firewall.ban_command), or none (the state and the ban list only).",
                \.firewall.backend),
            .string(
                "firewall.table", "nftables table (family inet), ipset set-name prefix, iptables chain (upper-cased).", \.firewall.table,
                validate: { $0.isEmpty || $0.count > 24 || !$0.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) ? "must be 1 to 24 letters, digits or _" : nil }),
            ConfigurationKey(
                path: "firewall.ports", help: "TCP ports closed to banned addresses.",
                render: { yamlList($0.firewall.ports.map(String.init)) },
                apply: { config, value in
                    var ports: [Int] = []
                    for text in try ConfigurationKey.list(value) {
                        guard let port = Int(text), (1...65535).contains(port) else { throw ConfigValueError("\"\(text)\" is not a port (1-65535)") }
                        ports.append(port)
                    }
                    guard !ports.isEmpty else { throw ConfigValueError("needs at least one port") }
                    config.firewall.ports = ports
                }, isList: true),
            .string(
                "firewall.ban_command", "For backend command: run for each ban, with {address} (an address or prefix), {seconds} and {family} (inet, inet6) replaced; no shell.",
                \.firewall.banCommand),
            .string("firewall.unban_command", "For backend command: run when a ban is lifted or runs out.", \.firewall.unbanCommand),
            .duration(
                "firewall.check_interval",
                "How often the watcher reads back what nftables, ipset or iptables holds and puts back what is missing: its table, sets or chain (gone after `systemctl restart nftables`, which flushes the ruleset) with every ban in force, or single elements; each repair is logged and counted (smtpguard_firewall_repairs_total). 0s: never.",
                \.firewall.checkInterval),
            .string(
                "firewall.banlist_listen", "HOST:PORT for the ban list in plain text (GET /bans: one address or prefix per line) for external firewalls; empty: off.",
                \.firewall.banlistListen, validate: { $0.isEmpty || HostPort($0) != nil ? nil : "expected HOST:PORT (IPv6 as [::1]:8026)" }),

            .string(
                "admin.listen", "HOST:PORT of the admin API, /metrics and the dashboard (keep it on loopback or a management network); empty: off.",
                \.admin.listen, validate: { $0.isEmpty || HostPort($0) != nil ? nil : "expected HOST:PORT (IPv6 as [::1]:8025)" }),
            .string(
                "admin.token",
                "The bearer token every admin request needs. A secret: never logged. Empty: read from admin.token_file, which is created with a new random token on first run.",
                \.admin.token, validate: { $0.isEmpty || ($0.count >= 16 && !$0.contains(" ")) ? nil : "must be at least 16 characters without spaces" }),
            .string(
                "admin.token_file", "File holding the admin token (mode 0600; a file others can read is refused); empty: smtpguard-admin.token beside state.path, or in $STATE_DIRECTORY (else the working folder) when the state is not a file.", \.admin.tokenFile),
            .int("admin.max_body_size", "Largest JSON request body in bytes.", \.admin.maxBodySize, 1024...16_777_216),
            .int("admin.event_buffer", "Recent events kept in memory for GET /api/events and the dashboard.", \.admin.eventBuffer, 100...1_000_000),

            .bool("alerts.syslog", "Also send alerts to the system log (facility mail), folded into digests like webhooks.", \.alerts.syslog),
            .string("alerts.syslog_socket", "The system log's socket.", \.alerts.syslogSocket),
            ConfigurationKey(
                path: "alerts.webhooks", help: "URLs (http:// or https://) that get each alert, or digest, as a JSON POST signed with alerts.webhook_secret.",
                render: { yamlList($0.alerts.webhooks) },
                apply: { config, value in
                    let urls = try ConfigurationKey.list(value)
                    for (index, url) in urls.enumerated() where HTTPURL(url) == nil {
                        throw ConfigValueError("item \(index + 1): \"\(url)\" is not an http:// or https:// URL with a host")
                    }
                    config.alerts.webhooks = urls
                }, isList: true),
            .string(
                "alerts.webhook_secret",
                "Key of the HMAC-SHA256 signature in each webhook's X-SMTPGuard-Signature header (see README). A secret: never logged.",
                \.alerts.webhookSecret),
            .duration("alerts.webhook_timeout", "How long one webhook delivery may take.", \.alerts.webhookTimeout, min: .milliseconds(100), max: .seconds(120)),
            .int("alerts.webhook_retries", "Further tries after a failed delivery (waiting 1 s, 2 s, 4 s … up to a minute).", \.alerts.webhookRetries, 0...20),
            .duration(
                "alerts.digest_interval",
                "The first alert of a kind goes out at once; more of that kind within this interval are folded into one digest at its end (syslog and webhooks). 0: each on its own.",
                \.alerts.digestInterval, min: .zero, max: .seconds(86_400)),
            .int(
                "alerts.volume_threshold", "Failed logins per minute, over all clients, that raise an attack_volume alert; 0: never.",
                \.policy.alertVolumeThreshold, 0...100_000_000),

            .string(
                "dovecot_policy.listen", "HOST:PORT of the HTTP endpoint for Dovecot's auth_policy_server_url (`smtpguard policy`, or beside `run` and `watch`); empty: off.",
                \.dovecotPolicy.listen, validate: { $0.isEmpty || HostPort($0) != nil ? nil : "expected HOST:PORT (IPv6 as [::1]:8025)" }),
            .string(
                "dovecot_policy.api_header",
                "The header every request must carry, as Dovecot's auth_policy_server_api_header: \"Name: value\", or a bare value (sent as X-API-Key). A secret: never logged.",
                \.dovecotPolicy.apiHeader),
            .string(
                "dovecot_policy.basic_auth", "user:password every request must carry as HTTP basic auth (user:password@ in Dovecot's URL). A secret: never logged.",
                \.dovecotPolicy.basicAuth, validate: { $0.isEmpty || $0.contains(":") ? nil : "expected user:password" }),
            .string(
                "dovecot_policy.hash_nonce",
                "Dovecot's auth_policy_hash_nonce: lets the guard recognise default passwords in pwhash (and refuse them after a successful login). A secret: never logged or shown.",
                \.dovecotPolicy.hashNonce),
            .int(
                "dovecot_policy.hash_truncate", "Dovecot's auth_policy_hash_truncate: bits of the password hash in pwhash (0: the whole SHA-256).",
                \.dovecotPolicy.hashTruncate, 0...256),
            .int("dovecot_policy.max_body_size", "Largest request body in bytes; larger requests get 413.", \.dovecotPolicy.maxBodySize, 256...1_048_576),
            ConfigurationKey(
                path: "postfix_policy.listen",
                help: "Where Postfix's check_policy_service connects: HOST:PORT (inet:HOST:PORT in Postfix) or unix:/path (a socket created mode 0660, group postfix_policy.socket_group); empty: off.",
                render: { yamlList($0.postfixPolicy.listen) },
                apply: { config, value in
                    let items = try ConfigurationKey.list(value)
                    for item in items { _ = try PostfixPolicyConfiguration.Endpoint(parsing: item) }
                    config.postfixPolicy.listen = items
                }, isList: true),
            .string(
                "postfix_policy.ban_action", "The access(5) action for a banned client (421 disconnects; DEFER or REJECT answer and keep the session).",
                \.postfixPolicy.banAction, validate: postfixAction),
            .string(
                "postfix_policy.socket_group",
                "The group of a unix: policy socket (mode 0660): Postfix's smtpd must be in it, other local users are not; empty: the guard's own group. The guard's user must be a member (systemd: SupplementaryGroups=).",
                \.postfixPolicy.socketGroup),
            .int("postfix_policy.max_request_size", "Largest request in bytes (all its lines); a larger one is logged and its connection closed.", \.postfixPolicy.maxRequestSize, 512...1_048_576),
            .duration("postfix_policy.idle_timeout", "How long a Postfix connection may wait between requests (Postfix keeps its own for 300s).", \.postfixPolicy.idleTimeout, min: .seconds(1)),

            .bool("sending.enabled", "Count what authenticated users send (proxy and Postfix policy) and defer what goes past a limit.", \.policy.sending.enabled),
            .int("sending.messages_per_minute", "Messages one authenticated user may start per minute; 0: no limit.", \.policy.sending.defaults.messagesPerMinute, 0...SendingLimits.maximum),
            .int("sending.messages_per_hour", "Messages per user per hour; 0: no limit.", \.policy.sending.defaults.messagesPerHour, 0...SendingLimits.maximum),
            .int("sending.messages_per_day", "Messages per user per day; 0: no limit.", \.policy.sending.defaults.messagesPerDay, 0...SendingLimits.maximum),
            .int("sending.recipients_per_minute", "Recipients one authenticated user may add per minute (every RCPT asked for counts); 0: no limit.", \.policy.sending.defaults.recipientsPerMinute, 0...SendingLimits.maximum),
            .int("sending.recipients_per_hour", "Recipients per user per hour; 0: no limit.", \.policy.sending.defaults.recipientsPerHour, 0...SendingLimits.maximum),
            .int("sending.recipients_per_day", "Recipients per user per day; 0: no limit.", \.policy.sending.defaults.recipientsPerDay, 0...SendingLimits.maximum),
            ConfigurationKey(
                path: "sending.groups", help: "Named sets of users for sending.overrides: \"NAME: USER USER @DOMAIN …\".",
                render: { yamlList($0.policy.sending.groups.map(\.description)) },
                apply: { config, value in
                    var groups: [SendingGroup] = []
                    for text in try ConfigurationKey.list(value) { groups.append(try SendingGroup(parsing: text)) }
                    config.policy.sending.groups = groups
                }, isList: true),
            ConfigurationKey(
                path: "sending.overrides",
                help: "Other limits for some users: \"USER|@DOMAIN|group:NAME: recipients_per_hour=N messages_per_day=N …\"; windows not named keep the defaults. A user's own line wins over its groups', which win over its domain's.",
                render: { yamlList($0.policy.sending.overrides.map(\.description)) },
                apply: { config, value in
                    var overrides: [SendingOverride] = []
                    for text in try ConfigurationKey.list(value) { overrides.append(try SendingOverride(parsing: text)) }
                    config.policy.sending.overrides = overrides
                }, isList: true),
            .bool(
                "sending.lock_account", "Past a limit, also lock the account's AUTH (and its sending) until an operator lifts the lock.",
                \.policy.sending.lockAccount),
            .duration("sending.alert_interval", "A user over a limit raises at most one alert in this time.", \.policy.sending.alertInterval, min: .seconds(1)),
        ]
    }
}
