// The guard's TLS contexts: its server certificate (for STARTTLS and implicit TLS
// listeners), reloadable on SIGHUP without touching open sessions, and the client context
// for TLS to the backend. Every failure to load names the file and what is wrong with it.

import Foundation
import GuardCore
import NIOCore
import NIOSSL
import Synchronization

/// A certificate or key that cannot be used, in words for the administrator.
public struct TLSLoadError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// What was loaded, for the log.
public struct CertificateSummary: Sendable {
    public var subject: String
    public var notAfter: Date
    public var chainLength: Int
}

/// The server context in use. Each new TLS session takes the current one; a reload swaps it
/// and sessions already open keep the one they started with.
public final class TLSContextStore: Sendable {
    public let settings: TLSSettings
    private let current: Mutex<(context: NIOSSLContext, summary: CertificateSummary)>

    public init(settings: TLSSettings) throws {
        self.settings = settings
        self.current = Mutex(try Self.load(settings))
    }

    public var context: NIOSSLContext { self.current.withLock { $0.context } }
    public var summary: CertificateSummary { self.current.withLock { $0.summary } }

    /// Reads the files again. On any problem the previous certificate stays in use.
    @discardableResult
    public func reload() throws -> CertificateSummary {
        let loaded = try Self.load(self.settings)
        self.current.withLock { $0 = loaded }
        return loaded.summary
    }

    static func load(_ settings: TLSSettings) throws -> (context: NIOSSLContext, summary: CertificateSummary) {
        try readable(settings.certificate, key: "tls.certificate")
        try readable(settings.key, key: "tls.key")
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(settings.certificate)
        } catch {
            throw TLSLoadError("tls.certificate \(settings.certificate): not a PEM certificate file (\(error))")
        }
        guard let leaf = chain.first else {
            throw TLSLoadError("tls.certificate \(settings.certificate): holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: settings.key, format: .pem)
        } catch {
            throw TLSLoadError("tls.key \(settings.key): not a PEM private key, or one protected by a passphrase (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = settings.minimumVersion == .v1_3 ? .tlsv13 : .tlsv12
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            // BoringSSL compares the key with the certificate's public key as it loads them.
            let text = "\(error)"
            // (The key itself was read above, so a key that fails now is the wrong key.)
            if text.contains("KEY_VALUES_MISMATCH") || text.contains("KEY_TYPE_MISMATCH") || text.contains("failedToLoadPrivateKey") {
                throw TLSLoadError("tls.key \(settings.key) does not belong to the certificate in tls.certificate \(settings.certificate)")
            }
            throw TLSLoadError("tls.certificate \(settings.certificate) with tls.key \(settings.key): cannot be used (\(error))")
        }
        let summary = CertificateSummary(
            subject: leaf.commonNameText, notAfter: Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter)), chainLength: chain.count)
        return (context, summary)
    }

    static func readable(_ path: String, key: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TLSLoadError("\(key) \(path): no such file")
        }
        guard !isDirectory.boolValue else { throw TLSLoadError("\(key) \(path): is a directory, not a PEM file") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw TLSLoadError("\(key) \(path): not readable by this user")
        }
    }
}

/// TLS to the backend: the client context and the name its certificate must carry.
public struct BackendTLS: Sendable {
    public let context: NIOSSLContext
    /// Sent as SNI and checked against the certificate; nil when the backend is named by an
    /// IP address (then the certificate must carry that address as an IP name).
    public let serverName: String?

    public init(_ proxy: ProxyConfiguration) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        let name = proxy.backendTLSServerName.isEmpty ? proxy.backend.host : proxy.backendTLSServerName
        let isAddress = IPAddress(name) != nil
        if !proxy.backendTLSVerify {
            configuration.certificateVerification = .none
        } else {
            // NIOSSL accepts the certificate when it names the host, or carries the connected
            // address as an IP subject alternative name.
            configuration.certificateVerification = .fullVerification
            if !proxy.backendTLSCA.isEmpty {
                try TLSContextStore.readable(proxy.backendTLSCA, key: "backend.tls_ca")
                do {
                    let roots = try NIOSSLCertificate.fromPEMFile(proxy.backendTLSCA)
                    guard !roots.isEmpty else { throw TLSLoadError("backend.tls_ca \(proxy.backendTLSCA): holds no certificate") }
                    configuration.trustRoots = .certificates(roots)
                } catch let error as TLSLoadError {
                    throw error
                } catch {
                    throw TLSLoadError("backend.tls_ca \(proxy.backendTLSCA): not a PEM certificate file (\(error))")
                }
            }
        }
        do {
            self.context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSLoadError("backend TLS: \(error)")
        }
        self.serverName = isAddress ? nil : name
    }

    func makeHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: self.context, serverHostname: self.serverName)
    }
}

extension TLSVersion {
    /// As OpenSSL and Postfix write it: "TLSv1.3".
    public var text: String {
        switch self {
        case .tlsv1: return "TLSv1"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        }
    }
}

extension NIOSSLCertificate {
    /// The subject's common name, or its first DNS name, for the log.
    var commonNameText: String {
        for name in self._subjectAlternativeNames() where name.nameType == .dnsName {
            return String(decoding: name.contents, as: UTF8.self)
        }
        // NIOSSL shows the common name only in its description.
        let text = self.description
        if let range = text.range(of: ";common_name=") {
            return String(text[range.upperBound...].prefix { $0 != ";" && $0 != ">" })
        }
        return "(no name)"
    }
}
