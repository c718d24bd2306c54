// The audit's SMTP client: one connection, commands sent one at a time and answered by whole
// replies, STARTTLS or implicit TLS with the certificate kept for inspection. Every read has
// a deadline; nothing is ever sent but what the audit asks for.

import Foundation
import GuardCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SMTPWire
import SwiftASN1
import X509

public struct ProbeError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The certificates the server sent (DER, leaf first) and the leaf's validity.
struct PeerChain: Sendable {
    var der: [[UInt8]] = []
    var validity: (Int, Int)?
}

/// What the TLS handshake showed.
public struct TLSDetails: Sendable, Equatable {
    /// "TLS 1.3", "TLS 1.2" …
    public var version: String
    public var versionIsCurrent: Bool
    /// Why the chain is not trusted (no path to a root of the system's or `--ca-file`, expired
    /// …), or nil when it is.
    public var trustProblem: String?
    /// DNS names and addresses the certificate is for (subject alternative names, else the
    /// subject's common name).
    public var names: [String]
    public var issuer: String
    /// Validity, seconds since 1970.
    public var notBefore: Int
    public var notAfter: Int

    /// Whether `host` (a name or an address) is one of the certificate's names; a wildcard
    /// covers one label.
    public func matches(host: String) -> Bool {
        let host = host.lowercased().hasSuffix(".") ? String(host.lowercased().dropLast()) : host.lowercased()
        if let address = IPAddress(host) { return self.names.contains { IPAddress($0) == address } }
        return self.names.contains { name in
            let name = name.lowercased()
            if name == host { return true }
            guard name.hasPrefix("*."), let dot = host.firstIndex(of: ".") else { return false }
            return host[host.index(after: dot)...] == name.dropFirst(2) && host[..<dot] != ""
        }
    }
}

/// How the connection starts.
public enum ProbeTransport: String, Sendable {
    /// Plain text, STARTTLS when offered (ports 25, 587 …).
    case starttls
    /// TLS from the first byte (port 465).
    case implicitTLS = "tls"
    /// Plain text only; STARTTLS is not attempted.
    case plain
}

/// One SMTP conversation, used inside `SMTPProbe.session`.
public final class SMTPConversation {
    let channel: any Channel
    private var replies: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
    private let writer: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let timeout: Duration
    let tls: NIOSSLContext
    let roots: CertificateStore
    let chain = NIOLockedValueBox(PeerChain())
    let serverName: String?
    public private(set) var tlsDetails: TLSDetails?

    init(
        channel: any Channel, inbound: NIOAsyncChannelInboundStream<SMTPReply>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        timeout: Duration, tls: NIOSSLContext, roots: CertificateStore, serverName: String?
    ) {
        self.channel = channel
        self.replies = inbound.makeAsyncIterator()
        self.writer = outbound
        self.timeout = timeout
        self.tls = tls
        self.roots = roots
        self.serverName = serverName
    }

    /// The next reply; throws when none comes within the timeout or the server closes.
    public func reply() async throws -> SMTPReply {
        let channel = self.channel
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(self.timeout.nanosecondsClamped)) {
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        do {
            guard let reply = try await self.replies.next() else { throw ProbeError("the server closed the connection") }
            return reply
        } catch let error as ProbeError {
            throw error
        } catch {
            throw ProbeError("\(error)")
        }
    }

    /// Sends one command line (CRLF added) and returns its reply.
    public func command(_ line: String) async throws -> SMTPReply {
        do {
            try await self.writer.write(ByteBuffer(string: line + "\r\n"))
        } catch {
            throw ProbeError("the server closed the connection")
        }
        return try await self.reply()
    }

    /// Starts TLS on the open connection (after a 220 to STARTTLS, or at once for port 465).
    /// The handshake accepts any certificate; the chain is then checked here, so that the
    /// audit can report what is wrong with it rather than just fail.
    public func startTLS() async throws -> TLSDetails {
        let handshake = self.channel.eventLoop.makePromise(of: Void.self)
        let (context, serverName, chain) = (self.tls, self.serverName, self.chain)
        let channel = self.channel
        do {
            try await channel.eventLoop.submit {
                let client = try NIOSSLClientHandler(context: context, serverHostname: serverName) { certificates, promise in
                    chain.withLockedValue {
                        $0 = PeerChain(
                            der: certificates.compactMap { try? $0.toDERBytes() },
                            validity: certificates.first.map { (Int($0.notValidBefore), Int($0.notValidAfter)) })
                    }
                    promise.succeed(.certificateVerified)
                }
                try channel.pipeline.syncOperations.addHandler(client, position: .first)
                try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(promise: handshake), position: .after(client))
            }.get()
        } catch {
            handshake.fail(error)  // (a promise is always completed)
            throw ProbeError("the server closed the connection before TLS")
        }
        let timeout = self.timeout
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanosecondsClamped)) {
            handshake.fail(ProbeError("no TLS handshake within \(timeout)"))
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        do {
            try await handshake.futureResult.get()
        } catch let error as ProbeError {
            throw error
        } catch {
            throw ProbeError("TLS handshake failed (\(error))")
        }
        let version = try? await channel.nioSSL_tlsVersion().get()
        let peer = chain.withLockedValue { $0 }
        guard let validity = peer.validity, let leafBytes = peer.der.first else { throw ProbeError("the server sent no certificate") }
        let details: TLSDetails
        do {
            let leaf = try Certificate(derEncoded: leafBytes)
            let intermediates = peer.der.dropFirst().compactMap { try? Certificate(derEncoded: $0) }
            var verifier = Verifier(rootCertificates: self.roots) { RFC5280Policy() }
            let trustProblem: String?
            switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates)) {
            case .validCertificate: trustProblem = nil
            case .couldNotValidate(let failures):
                trustProblem = failures.first.map { "\($0.policyFailureReason)" } ?? "no chain to a trusted root"
            }
            details = TLSDetails(
                version: version.flatMap { $0 }.map(Self.name) ?? "unknown", versionIsCurrent: version == .tlsv12 || version == .tlsv13,
                trustProblem: trustProblem, names: Self.names(of: leaf), issuer: "\(leaf.issuer)", notBefore: validity.0, notAfter: validity.1)
        } catch {
            // A key this verifier does not accept (RSA under 2048 bits, DSA …) is itself the finding.
            details = TLSDetails(
                version: version.flatMap { $0 }.map(Self.name) ?? "unknown", versionIsCurrent: version == .tlsv12 || version == .tlsv13,
                trustProblem: "the certificate cannot be checked (\(error))", names: [], issuer: "unknown", notBefore: validity.0,
                notAfter: validity.1)
        }
        self.tlsDetails = details
        return details
    }

    static func name(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLS 1.0"
        case .tlsv11: "TLS 1.1"
        case .tlsv12: "TLS 1.2"
        case .tlsv13: "TLS 1.3"
        }
    }

    /// DNS names and addresses from the subject alternative names, else the common name.
    static func names(of certificate: Certificate) -> [String] {
        var names: [String] = []
        for name in (try? certificate.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames() {
            switch name {
            case .dnsName(let text):
                names.append(text)
            case .ipAddress(let octets):
                let bytes = Array(octets.bytes)
                if bytes.count == 4 {
                    names.append(bytes.map(String.init).joined(separator: "."))
                } else if bytes.count == 16 {
                    let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                    let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                    names.append(IPAddress(high: high, low: low).description)
                }
            default:
                continue
            }
        }
        if names.isEmpty {
            for rdn in certificate.subject {
                for attribute in rdn where attribute.type == .RDNAttributeType.commonName { names.append(String(attribute.value) ?? "\(attribute.value)") }
            }
        }
        return names
    }
}

public enum SMTPProbe {
    /// Connects to `host:port`, reads the greeting, runs `body`, and closes. `serverName` is
    /// sent in TLS's SNI (a name, never an address); `caFile` replaces the system's roots.
    public static func session<T>(
        host: String, port: Int, transport: ProbeTransport, caFile: String?, source: String? = nil, timeout: Duration,
        _ body: (SMTPConversation, SMTPReply) async throws -> T
    ) async throws -> T {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv1  // reach old servers too, and say so
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ProbeError("cannot set up TLS (\(error))")
        }
        let roots = try await Self.trustRoots(caFile: caFile)
        let serverName = IPAddress(host) == nil ? host : nil
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
        if let source {
            do {
                bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0))
            } catch {
                throw ProbeError("--source \(source): not an address of this machine")
            }
        }
        let channel: NIOAsyncChannel<SMTPReply, ByteBuffer>
        do {
            channel = try await bootstrap
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ReplyDecoder())
                        return try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            let text = "\(error)"
            let reason = text.contains("refused") ? "connection refused" : text.contains("imeout") || text.contains("timed out") ? "timed out" : text
            throw ProbeError("cannot connect to \(host) port \(port) (\(reason))")
        }
        return try await channel.executeThenClose { inbound, outbound in
            let conversation = SMTPConversation(
                channel: channel.channel, inbound: inbound, outbound: outbound, timeout: timeout, tls: context, roots: roots,
                serverName: serverName)
            if transport == .implicitTLS { _ = try await conversation.startTLS() }
            let greeting = try await conversation.reply()
            let result = try await body(conversation, greeting)
            _ = try? await conversation.command("QUIT")
            return result
        }
    }
}

extension SMTPProbe {
    /// The system's trusted roots, or the certificates of a PEM file instead.
    static func trustRoots(caFile: String?) async throws -> CertificateStore {
        guard let caFile else { return CertificateStore.systemTrustRoots }
        let text: String
        do {
            text = try String(contentsOfFile: caFile, encoding: .utf8)
        } catch {
            throw ProbeError("--ca-file \(caFile): cannot read it (\(error.localizedDescription))")
        }
        do {
            let certificates = try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) }
            guard !certificates.isEmpty else { throw ProbeError("no certificate in it") }
            return CertificateStore(certificates)
        } catch {
            throw ProbeError("--ca-file \(caFile): not a PEM certificate file (\(error))")
        }
    }
}

/// Bytes in, whole replies out; anything that is not SMTP ends the connection with a reason.
final class ReplyDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = SMTPReply

    private var reader = SMTPReplyReader(maxLine: 4096)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.reader.append(&incoming)
        let failure: String
        do {
            while let reply = try self.reader.next() { context.fireChannelRead(self.wrapInboundOut(reply)) }
            return
        } catch {
            switch error {
            case .malformed(let reason): failure = "the server's reply is not SMTP (\(reason))"
            case .tooLong: failure = "the server sent a line over 4096 bytes"
            case .bareNewline: failure = "the server sent a bare CR or LF"
            }
        }
        context.fireErrorCaught(ProbeError(failure))
        context.close(promise: nil)
    }
}

/// Fulfils a promise when the TLS handshake completes, or fails it.
final class HandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { self.promise.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(ProbeError("the server closed the connection during the TLS handshake"))
        context.fireChannelInactive()
    }
}
