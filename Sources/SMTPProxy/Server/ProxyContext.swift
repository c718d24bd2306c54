// ProxyContext: what every session of one proxy shares (configuration, the engine, the
// event sink, the connection registry, TLS, the backend connector).

import GuardCore
import Logging
import Metrics
import SMTPWire

/// What every session of one proxy shares.
public struct ProxyContext: Sendable {
    public var configuration: ProxyConfiguration
    public var session: SessionConfiguration
    public var guardEngine: Guard
    public var events: any EventSink
    public var registry: ConnectionRegistry
    public var logger: Logger
    public var connector: any BackendConnector
    /// The guard's certificate (STARTTLS, implicit TLS listeners); nil: no TLS to clients.
    public var tls: TLSContextStore?
    /// TLS to the backend (STARTTLS or implicit); nil: plain.
    public var backendTLS: BackendTLS?
    /// smtpguard_backend_errors_total: sessions ended by trouble with the backend.
    public var backendErrors = Counter(label: MetricNames.backendErrors)
    /// Watches the backend's AUTH answers for a penalty on the guard's own address (set when
    /// `backend.identity` is none: then the backend sees every client as the guard).
    public var penaltyMonitor: BackendPenaltyMonitor?
    /// Who gets a session at connect (limits, bans, AUTH networks).
    public var admission: ConnectionAdmission

    public init(
        configuration: ProxyConfiguration, session: SessionConfiguration, guardEngine: Guard, events: any EventSink,
        registry: ConnectionRegistry, logger: Logger, connector: any BackendConnector = TCPBackendConnector(),
        tls: TLSContextStore? = nil, backendTLS: BackendTLS? = nil, penaltyMonitor: BackendPenaltyMonitor? = nil
    ) {
        self.configuration = configuration
        self.session = session
        self.guardEngine = guardEngine
        self.events = events
        self.registry = registry
        self.logger = logger
        self.connector = connector
        self.tls = tls
        self.backendTLS = backendTLS
        self.penaltyMonitor = penaltyMonitor
        self.admission = ConnectionAdmission(configuration: configuration, replies: session.replies)
    }
}
